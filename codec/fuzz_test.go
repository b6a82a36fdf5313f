package codec_test

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/microfn/microfn/codec"
)

// checkDecodeErr fails unless err is nil or a *codec.DecodeError: whatever a
// producer writes, decoding must neither panic nor fail retryably.
func checkDecodeErr(t *testing.T, err error) bool {
	t.Helper()
	if err == nil {
		return true
	}
	if _, ok := err.(*codec.DecodeError); !ok {
		t.Fatalf("error %v is a %T, not a *codec.DecodeError", err, err)
	}
	return false
}

// reencode encodes v with enc, decodes the result with dec into a new value
// of v's type and checks that it equals v.
func reencode[T any](t *testing.T, enc, dec codec.Codec, v T, equal func(a, b T) bool) {
	t.Helper()
	h := map[string]string{}
	b, err := enc.Encode(v, h)
	if err != nil {
		t.Fatalf("%s: re-encode %#v: %v", enc.Name(), v, err)
	}
	var again T
	if err := dec.Decode(b, h, &again); err != nil {
		t.Fatalf("%s: decode re-encoded %q (headers %v): %v", dec.Name(), b, h, err)
	}
	if !equal(again, v) {
		t.Fatalf("%s: re-decoded %#v, want %#v", dec.Name(), again, v)
	}
}

var jsonSeeds = []string{
	``, ` `, `null`, `true`, `0`, `-0`, `1e308`, `1e309`, `-1e400`,
	`123456789012345678901234567890`, `0.1e-400`, `"x"`, `""`,
	"\"\xff\xfe\"", "\"\xc3\x28\"", `"\ud800"`, `"\u0000"`, `[]`, `{}`,
	`{"id":"o-1","amount":12.5}`, `{"id":1}`, `{"id":"o-1"}}`, `{"id":"o-1"}]`,
	`[1,2]x`, `1 2`, `{`, `[[[[[[[[[[]]]]]]]]]]`, `{"a":{"a":{"a":null}}}`,
	`{"ID":"case","Amount":1}`, `{"id":"dup","id":"dup2"}`,
}

func deepEqual[T any](a, b T) bool { return reflect.DeepEqual(a, b) }

func FuzzDecodeJSON(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s), "")
		f.Add([]byte(s), "application/json; charset=utf-8")
	}
	f.Add([]byte(`{}`), "text/plain")
	f.Fuzz(func(t *testing.T, data []byte, ct string) {
		h := map[string]string{}
		if ct != "" {
			h[codec.HeaderContentType] = ct
		}
		var v any
		if checkDecodeErr(t, codec.JSON.Decode(data, h, &v)) {
			reencode(t, codec.JSON, codec.JSON, v, deepEqual)
		}
		var o Order
		if checkDecodeErr(t, codec.JSON.Decode(data, h, &o)) {
			reencode(t, codec.JSON, codec.JSON, o, deepEqual)
		}
	})
}

func FuzzDecodeRaw(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s))
	}
	f.Add([]byte{0, 0xff, 0x80})
	f.Fuzz(func(t *testing.T, data []byte) {
		var v []byte
		if err := codec.Raw.Decode(data, map[string]string{}, &v); err != nil {
			t.Fatalf("Decode: %v", err)
		}
		if !bytes.Equal(v, data) {
			t.Fatalf("decoded %q, want %q", v, data)
		}
		reencode(t, codec.Raw, codec.Raw, v, bytes.Equal)
	})
}

func FuzzDecodeCloudEvents(f *testing.F) {
	const ce = "application/cloudevents+json"
	const attrs = `"specversion":"1.0","id":"1","source":"/s","type":"t"`
	structured := []string{
		`{` + attrs + `}`,
		`{` + attrs + `,"data":{"id":"o-1","amount":1}}`,
		`{` + attrs + `,"data":null}`,
		`{` + attrs + `,"datacontenttype":"application/json","data":[1,"x",1e309]}`,
		`{` + attrs + `,"datacontenttype":"text/plain","data":"hello"}`,
		`{` + attrs + `,"datacontenttype":"text/plain","data":{"a":1}}`,
		`{` + attrs + `,"datacontenttype":"application/vnd.x+json","data":"s"}`,
		`{` + attrs + `,"data_base64":"eyJpZCI6Im8tMSJ9"}`,
		`{` + attrs + `,"datacontenttype":"application/octet-stream","data_base64":"AAH+/w=="}`,
		`{` + attrs + `,"data_base64":"!!not base64"}`,
		`{` + attrs + `,"data_base64":"eyJ"}`,
		`{` + attrs + `,"data_base64":null}`,
		`{` + attrs + `,"data_base64":5}`,
		`{` + attrs + `,"data":1,"data_base64":"MQ=="}`,
		`{` + attrs + `,"subject":"s","ext":5,"flag":false,"nul":null,"":"empty name"}`,
		`{` + attrs + `,"ext":{"nested":1}}`,
		`{` + attrs + `,"ext":[1]}`,
		`{` + attrs + `,"data":1}trailing`,
		`{"specversion":"1.0","id":"1","source":"/s"}`,
		`{"specversion":"0.3","id":"1","source":"/s","type":"t"}`,
		`{"specversion":1,"id":"1","source":"/s","type":"t"}`,
		`{"specversion":"1.0","id":"","source":"/s","type":"t"}`,
		"{\"specversion\":\"1.0\",\"id\":\"\xff\",\"source\":\"/s\",\"type\":\"t\",\"data\":\"\xfe\"}",
		`{"SPECVERSION":"1.0","id":"1","source":"/s","type":"t"}`,
		`null`, `[]`, `"1.0"`, ``, `{`,
	}
	for _, s := range structured {
		f.Add([]byte(s), ce, false, "", "", "", "")
		f.Add([]byte(s), ce+"; charset=utf-8", true, "1.0", "1", "/s", "t")
	}
	for _, s := range jsonSeeds {
		f.Add([]byte(s), "", true, "1.0", "1", "/s", "t")
		f.Add([]byte(s), "application/json", true, "1.0", "1", "/s", "t")
	}
	f.Add([]byte(`1`), "", false, "1.0", "1", "/s", "t")
	f.Add([]byte(`1`), "", true, "", "1", "/s", "t")
	f.Add([]byte(`1`), "", true, "1.0", "", "", "")
	f.Add([]byte(`1`), "text/plain", true, "1.0", "1", "/s", "t")
	f.Add([]byte(`[]`), "application/cloudevents-batch+json", false, "", "", "", "")
	f.Add([]byte(`x`), "application/cloudevents", true, "1.0", "1", "/s", "t")

	// Type is set: a JSON null decodes to a nil payload, whose type the
	// codec cannot name.
	binary := codec.CloudEvents{Type: "t"}
	structuredJSON := codec.CloudEvents{Structured: true, Type: "t"}
	binaryRaw := codec.CloudEvents{Data: codec.Raw}
	structuredRaw := codec.CloudEvents{Structured: true, Data: codec.Raw}
	f.Fuzz(func(t *testing.T, value []byte, ct string, hasSpec bool, spec, id, source, typ string) {
		headers := func() map[string]string {
			h := map[string]string{}
			if ct != "" {
				h[codec.HeaderContentType] = ct
			}
			if hasSpec {
				h["ce_specversion"] = spec
			}
			for k, a := range map[string]string{"ce_id": id, "ce_source": source, "ce_type": typ} {
				if a != "" {
					h[k] = a
				}
			}
			return h
		}

		h := headers()
		var v any
		if checkDecodeErr(t, binary.Decode(value, h, &v)) {
			if h["ce_specversion"] != "1.0" || h["ce_id"] == "" || h["ce_source"] == "" || h["ce_type"] == "" {
				t.Fatalf("decoded an event without its required attributes: headers %v", h)
			}
			reencode(t, binary, binary, v, deepEqual)
			reencode(t, structuredJSON, binary, v, deepEqual)
		}

		var raw []byte
		if checkDecodeErr(t, binaryRaw.Decode(value, headers(), &raw)) {
			reencode(t, binaryRaw, binaryRaw, raw, bytes.Equal)
			reencode(t, structuredRaw, binaryRaw, raw, bytes.Equal)
		}
	})
}
