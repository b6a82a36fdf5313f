// Package protobuf provides a codec for Protocol Buffers messages. It lives
// apart from package codec so that functions which do not use protobuf do
// not link, or initialise, the protobuf runtime; import it for its side
// effect to make the "protobuf" codec available by name.
package protobuf

import (
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/microfn/microfn/codec"
)

// ContentType is the media type the codec writes in the content-type header.
const ContentType = "application/x-protobuf"

// Codec encodes proto.Message payloads in the protobuf wire format.
var Codec codec.Codec = protobufCodec{}

type protobufCodec struct{}

func init() { codec.Register(Codec) }

func (protobufCodec) Name() string { return "protobuf" }

func (protobufCodec) Encode(v any, h map[string]string) ([]byte, error) {
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("protobuf codec encodes a proto.Message, not %T", v)
	}
	b, err := proto.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode protobuf payload: %w", err)
	}
	h[codec.HeaderContentType] = ContentType
	return b, nil
}

func (protobufCodec) Decode(data []byte, h map[string]string, v any) error {
	if ct := h[codec.HeaderContentType]; ct != "" {
		mt, _, _ := strings.Cut(ct, ";")
		switch strings.ToLower(strings.TrimSpace(mt)) {
		case ContentType, "application/protobuf":
		default:
			// The record is not protobuf; like codec.JSON, accept only
			// a missing header or a matching one.
			return decodeError(fmt.Errorf("content-type %q is not %s", ct, ContentType))
		}
	}
	m, ok := v.(proto.Message)
	if !ok {
		return decodeError(fmt.Errorf("protobuf codec decodes into a proto.Message, not %T", v))
	}
	if !m.ProtoReflect().IsValid() {
		// proto.Unmarshal panics on a typed nil pointer.
		return decodeError(fmt.Errorf("protobuf codec cannot decode into a nil %T", v))
	}
	if err := proto.Unmarshal(data, m); err != nil {
		return decodeError(err)
	}
	return nil
}

func decodeError(err error) error { return &codec.DecodeError{Codec: "protobuf", Err: err} }
