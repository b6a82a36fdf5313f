package protobuf_test

import (
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/microfn/microfn/codec"
	"github.com/microfn/microfn/codec/protobuf"
)

func wantDecodeError(t *testing.T, err error) {
	t.Helper()
	if _, ok := err.(*codec.DecodeError); !ok {
		t.Fatalf("got error %v (%T), want a *codec.DecodeError", err, err)
	}
}

func mustStruct(t *testing.T, m map[string]any) *structpb.Struct {
	t.Helper()
	s, err := structpb.NewStruct(m)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRoundTrip(t *testing.T) {
	codecs := []codec.Codec{
		protobuf.Codec,
		codec.CloudEvents{Data: protobuf.Codec},
		codec.CloudEvents{Structured: true, Data: protobuf.Codec},
	}
	tests := []struct {
		name string
		in   proto.Message
		out  func() proto.Message
	}{
		{"struct", mustStruct(t, map[string]any{"id": "o-1", "amount": 12.5, "tags": []any{"a", true, nil}}), func() proto.Message { return new(structpb.Struct) }},
		{"empty struct", &structpb.Struct{}, func() proto.Message { return new(structpb.Struct) }},
		{"string", wrapperspb.String("héllo \x00"), func() proto.Message { return new(wrapperspb.StringValue) }},
		{"zero value", wrapperspb.Int64(0), func() proto.Message { return new(wrapperspb.Int64Value) }},
		{"bytes", wrapperspb.Bytes([]byte{0, 0xff}), func() proto.Message { return new(wrapperspb.BytesValue) }},
	}
	for _, c := range codecs {
		for _, tt := range tests {
			t.Run(c.Name()+"/"+tt.name, func(t *testing.T) {
				h := map[string]string{}
				b, err := c.Encode(tt.in, h)
				if err != nil {
					t.Fatal(err)
				}
				out := tt.out()
				if err := c.Decode(b, h, out); err != nil {
					t.Fatal(err)
				}
				if !proto.Equal(out, tt.in) {
					t.Errorf("got %v, want %v", out, tt.in)
				}
				if h[codec.HeaderContentType] != protobuf.ContentType {
					t.Errorf("content-type after decode = %q, want %q", h[codec.HeaderContentType], protobuf.ContentType)
				}
			})
		}
	}
}

func TestDecodeResetsMessage(t *testing.T) {
	h := map[string]string{}
	b, err := protobuf.Codec.Encode(mustStruct(t, map[string]any{"a": 1}), h)
	if err != nil {
		t.Fatal(err)
	}
	out := mustStruct(t, map[string]any{"stale": true})
	if err := protobuf.Codec.Decode(b, h, out); err != nil {
		t.Fatal(err)
	}
	if _, ok := out.Fields["stale"]; ok {
		t.Errorf("Decode kept a field of the previous value: %v", out)
	}
}

func TestContentType(t *testing.T) {
	b, err := protobuf.Codec.Encode(wrapperspb.String("x"), map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	for _, ct := range []string{"", "application/x-protobuf", "application/protobuf", "Application/X-Protobuf; proto=google.protobuf.StringValue"} {
		h := map[string]string{}
		if ct != "" {
			h[codec.HeaderContentType] = ct
		}
		var out wrapperspb.StringValue
		if err := protobuf.Codec.Decode(b, h, &out); err != nil || out.GetValue() != "x" {
			t.Errorf("content-type %q: got %v, %v", ct, &out, err)
		}
	}
	for _, ct := range []string{"application/json", "text/plain"} {
		var out wrapperspb.StringValue
		wantDecodeError(t, protobuf.Codec.Decode(b, map[string]string{codec.HeaderContentType: ct}, &out))
	}
}

func TestErrors(t *testing.T) {
	if _, err := protobuf.Codec.Encode(struct{}{}, map[string]string{}); err == nil {
		t.Error("Encode(struct{}{}): want an error")
	}
	// proto3 strings must be valid UTF-8.
	if _, err := protobuf.Codec.Encode(wrapperspb.String("\xff"), map[string]string{}); err == nil || codec.IsDecodeError(err) {
		t.Errorf("Encode(invalid UTF-8) = %v, want an encode error", err)
	}
	var s string
	wantDecodeError(t, protobuf.Codec.Decode(nil, map[string]string{}, &s))
	wantDecodeError(t, protobuf.Codec.Decode(nil, map[string]string{}, nil))
	wantDecodeError(t, protobuf.Codec.Decode(nil, map[string]string{}, (*structpb.Struct)(nil)))
	var out structpb.Struct
	for _, data := range [][]byte{{0xff}, {0x0a, 0x05, 'a'}, {0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}} {
		wantDecodeError(t, protobuf.Codec.Decode(data, map[string]string{}, &out))
	}
}

func TestByName(t *testing.T) {
	c, err := codec.ByName("protobuf")
	if err != nil || c.Name() != "protobuf" {
		t.Fatalf("ByName(\"protobuf\") = %v, %v", c, err)
	}
}
