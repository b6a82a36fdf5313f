package codec_test

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/microfn/microfn/codec"
)

type Order struct {
	ID     string  `json:"id"`
	Amount float64 `json:"amount"`
}

// roundTrip encodes in, decodes the result into a new T and returns it with
// the headers Encode wrote.
func roundTrip[T any](t *testing.T, c codec.Codec, in any) (T, map[string]string) {
	t.Helper()
	h := map[string]string{}
	b, err := c.Encode(in, h)
	if err != nil {
		t.Fatalf("%s: Encode(%#v): %v", c.Name(), in, err)
	}
	var out T
	if err := c.Decode(b, h, &out); err != nil {
		t.Fatalf("%s: Decode(%q, %v): %v", c.Name(), b, h, err)
	}
	return out, h
}

// wantDecodeError fails unless err is a *DecodeError itself, not merely one
// wrapped in something else: callers type-switch on it.
func wantDecodeError(t *testing.T, err error) {
	t.Helper()
	if _, ok := err.(*codec.DecodeError); !ok {
		t.Fatalf("got error %v (%T), want a *codec.DecodeError", err, err)
	}
}

func TestRoundTrip(t *testing.T) {
	order := Order{ID: "o-1", Amount: 12.5}
	binary := []byte{0, 1, 2, 0xfe, 0xff, '\n', 0x80}
	jsonCodecs := []codec.Codec{
		codec.JSON,
		codec.CloudEvents{},
		codec.CloudEvents{Structured: true},
	}
	rawCodecs := []codec.Codec{
		codec.Raw,
		codec.CloudEvents{Data: codec.Raw},
		codec.CloudEvents{Structured: true, Data: codec.Raw},
	}
	for _, c := range jsonCodecs {
		t.Run(c.Name(), func(t *testing.T) {
			tests := []struct {
				name string
				in   any
				run  func(t *testing.T, in any) any
			}{
				{"struct", order, func(t *testing.T, in any) any { o, _ := roundTrip[Order](t, c, in); return o }},
				{"pointer", &order, func(t *testing.T, in any) any { o, _ := roundTrip[*Order](t, c, in); return o }},
				{"map", map[string]any{"a": 1.5, "b": []any{"x", true, nil}}, func(t *testing.T, in any) any {
					o, _ := roundTrip[map[string]any](t, c, in)
					return o
				}},
				{"string", "héllo \u2028 <&>", func(t *testing.T, in any) any { o, _ := roundTrip[string](t, c, in); return o }},
				{"empty string", "", func(t *testing.T, in any) any { o, _ := roundTrip[string](t, c, in); return o }},
				{"int64", int64(1) << 62, func(t *testing.T, in any) any { o, _ := roundTrip[int64](t, c, in); return o }},
				{"bytes as base64", binary, func(t *testing.T, in any) any { o, _ := roundTrip[[]byte](t, c, in); return o }},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					if got := tt.run(t, tt.in); !reflect.DeepEqual(got, tt.in) {
						t.Errorf("got %#v, want %#v", got, tt.in)
					}
				})
			}
		})
	}
	for _, c := range rawCodecs {
		t.Run(c.Name()+"/raw", func(t *testing.T) {
			for _, in := range [][]byte{nil, {}, []byte("plain text"), binary, []byte(`{"not":"parsed"}`)} {
				got, _ := roundTrip[[]byte](t, c, in)
				if !bytes.Equal(got, in) {
					t.Errorf("got %q, want %q", got, in)
				}
			}
		})
	}
}

func TestRawPreservesBytes(t *testing.T) {
	for _, in := range [][]byte{{}, {0}, {0xff, 0xfe, 0, 0x80}, []byte("not utf-8 \xc3\x28")} {
		h := map[string]string{}
		b, err := codec.Raw.Encode(in, h)
		if err != nil {
			t.Fatal(err)
		}
		var out []byte
		if err := codec.Raw.Decode(b, h, &out); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, in) || len(out) != len(in) {
			t.Errorf("got %q, want %q", out, in)
		}
	}
	// Strings and *[]byte encode as their bytes too.
	for _, in := range []any{"text", func() *[]byte { b := []byte("text"); return &b }()} {
		b, err := codec.Raw.Encode(in, map[string]string{})
		if err != nil || string(b) != "text" {
			t.Errorf("Encode(%T) = %q, %v; want \"text\"", in, b, err)
		}
	}
	if _, err := codec.Raw.Encode(42, map[string]string{}); err == nil {
		t.Error("Encode(42): want an error")
	}
	var s string
	wantDecodeError(t, codec.Raw.Decode([]byte("x"), map[string]string{}, &s))
}

func TestJSONDecode(t *testing.T) {
	tests := []struct {
		name    string
		data    string
		ct      *string // nil: no content-type header
		wantErr bool
	}{
		{name: "no content-type header", data: `{"id":"o-1"}`},
		{name: "application/json", data: `{"id":"o-1"}`, ct: ptr("application/json")},
		{name: "with parameters", data: `{"id":"o-1"}`, ct: ptr("Application/JSON; charset=utf-8")},
		{name: "text/json", data: `{"id":"o-1"}`, ct: ptr("text/json")},
		{name: "empty content-type", data: `{"id":"o-1"}`, ct: ptr("")},
		{name: "surrounding whitespace", data: " \n{\"id\":\"o-1\"}\t\r\n"},
		{name: "text/plain", data: `{"id":"o-1"}`, ct: ptr("text/plain"), wantErr: true},
		{name: "protobuf", data: `{"id":"o-1"}`, ct: ptr("application/x-protobuf"), wantErr: true},
		{name: "structured cloudevent", data: `{"id":"o-1"}`, ct: ptr("application/cloudevents+json"), wantErr: true},
		{name: "trailing brace", data: `{"id":"o-1"}}`, wantErr: true},
		{name: "trailing bracket", data: `{"id":"o-1"}]`, wantErr: true},
		{name: "second value", data: `{"id":"o-1"} {}`, wantErr: true},
		{name: "trailing garbage", data: `{"id":"o-1"}xyz`, wantErr: true},
		{name: "empty", data: ``, wantErr: true},
		{name: "whitespace only", data: " \n", wantErr: true},
		{name: "truncated", data: `{"id":"o-`, wantErr: true},
		{name: "malformed", data: `{"id":}`, wantErr: true},
		{name: "wrong type", data: `{"id":1}`, wantErr: true},
		{name: "not an object", data: `[1,2]`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := map[string]string{}
			if tt.ct != nil {
				h[codec.HeaderContentType] = *tt.ct
			}
			var o Order
			err := codec.JSON.Decode([]byte(tt.data), h, &o)
			if tt.wantErr {
				wantDecodeError(t, err)
				return
			}
			if err != nil || o.ID != "o-1" {
				t.Fatalf("got %+v, %v; want ID o-1, no error", o, err)
			}
		})
	}
	t.Run("non-pointer target", func(t *testing.T) {
		wantDecodeError(t, codec.JSON.Decode([]byte(`{}`), map[string]string{}, Order{}))
	})
	t.Run("nil target", func(t *testing.T) {
		wantDecodeError(t, codec.JSON.Decode([]byte(`{}`), map[string]string{}, nil))
	})
}

func TestJSONEncodeError(t *testing.T) {
	_, err := codec.JSON.Encode(make(chan int), map[string]string{})
	if err == nil || codec.IsDecodeError(err) {
		t.Fatalf("Encode(chan) = %v; want a plain encode error", err)
	}
}

func TestIsDecodeError(t *testing.T) {
	de := &codec.DecodeError{Codec: "json", Err: errors.New("bad")}
	if !codec.IsDecodeError(de) || !codec.IsDecodeError(fmt.Errorf("handling: %w", de)) {
		t.Error("IsDecodeError is false for a (wrapped) *DecodeError")
	}
	if codec.IsDecodeError(errors.New("bad")) || codec.IsDecodeError(nil) {
		t.Error("IsDecodeError is true for another error")
	}
	if !errors.Is(de, de.Err) {
		t.Error("a *DecodeError does not unwrap to its cause")
	}
	if got, want := de.Error(), "decode json payload: bad"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestByName(t *testing.T) {
	for _, name := range []string{"json", "raw", "cloudevents", "cloudevents-structured"} {
		c, err := codec.ByName(name)
		if err != nil {
			t.Fatalf("ByName(%q): %v", name, err)
		}
		if c.Name() != name {
			t.Errorf("ByName(%q).Name() = %q", name, c.Name())
		}
	}
	_, err := codec.ByName("avro")
	if err == nil {
		t.Fatal("ByName(\"avro\"): want an error")
	}
	want := `unknown codec "avro" (known: cloudevents, cloudevents-structured, json, raw)`
	if err.Error() != want {
		t.Errorf("ByName(\"avro\") error = %q, want %q", err, want)
	}
}

func ExampleJSON() {
	h := map[string]string{}
	b, err := codec.JSON.Encode(Order{ID: "o-1", Amount: 12.5}, h)
	if err != nil {
		panic(err)
	}
	fmt.Println(string(b), h["content-type"])

	var o Order
	err = codec.JSON.Decode(b, h, &o)
	fmt.Printf("%+v %v\n", o, err)

	err = codec.JSON.Decode([]byte(`{"id":`), h, &o)
	fmt.Println(codec.IsDecodeError(err), err)
	// Output:
	// {"id":"o-1","amount":12.5} application/json
	// {ID:o-1 Amount:12.5} <nil>
	// true decode json payload: unexpected end of JSON input
}

func ptr[T any](v T) *T { return &v }
