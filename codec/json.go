package codec

import (
	"encoding/json"
	"fmt"
)

// JSON encodes payloads with encoding/json. It is the default codec.
var JSON Codec = jsonCodec{}

type jsonCodec struct{}

func init() { Register(JSON) }

func (jsonCodec) Name() string { return "json" }

func (jsonCodec) Encode(v any, h map[string]string) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode json payload: %w", err)
	}
	h[HeaderContentType] = "application/json"
	return b, nil
}

// Decode uses json.Unmarshal rather than a json.Decoder: Unmarshal checks the
// whole input first, so it refuses anything after the value (a Decoder's
// More reports false for a trailing "}" or "]") and leaves v untouched on a
// syntax error.
func (jsonCodec) Decode(data []byte, h map[string]string, v any) error {
	if err := checkContentType("json", h, "application/json", "text/json"); err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return &DecodeError{Codec: "json", Err: err}
	}
	return nil
}
