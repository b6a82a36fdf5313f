package codec

import "fmt"

// Raw passes bytes through untouched. A handler whose payload type is
// []byte uses it regardless of the configured codec.
var Raw Codec = rawCodec{}

type rawCodec struct{}

func init() { Register(Raw) }

func (rawCodec) Name() string { return "raw" }

func (rawCodec) Encode(v any, h map[string]string) ([]byte, error) {
	switch b := v.(type) {
	case []byte:
		return b, nil
	case *[]byte:
		return *b, nil
	case string:
		return []byte(b), nil
	}
	return nil, fmt.Errorf("raw codec encodes []byte or string, not %T", v)
}

func (rawCodec) Decode(data []byte, _ map[string]string, v any) error {
	p, ok := v.(*[]byte)
	if !ok {
		return &DecodeError{Codec: "raw", Err: fmt.Errorf("raw codec decodes into *[]byte, not %T", v)}
	}
	*p = data
	return nil
}
