package codec_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/microfn/microfn/codec"
)

var eventID = regexp.MustCompile(`^[0-9a-f]{32}$`)

func TestCloudEventsNames(t *testing.T) {
	if got := (codec.CloudEvents{}).Name(); got != "cloudevents" {
		t.Errorf("binary Name() = %q", got)
	}
	if got := (codec.CloudEvents{Structured: true, Data: codec.Raw}).Name(); got != "cloudevents-structured" {
		t.Errorf("structured Name() = %q", got)
	}
}

// checkAttributes checks the headers a handler sees after decoding an event
// this package encoded with default Source and Type.
func checkAttributes(t *testing.T, h map[string]string) {
	t.Helper()
	for k, want := range map[string]string{
		"ce_specversion": "1.0",
		"ce_source":      "microfn",
		"ce_type":        "codec_test.Order",
		"content-type":   "application/json",
	} {
		if h[k] != want {
			t.Errorf("header %s = %q, want %q (headers %v)", k, h[k], want, h)
		}
	}
	if !eventID.MatchString(h["ce_id"]) {
		t.Errorf("ce_id = %q, want 32 hex digits", h["ce_id"])
	}
	ts, err := time.Parse(time.RFC3339Nano, h["ce_time"])
	if err != nil || time.Since(ts) > time.Minute || ts.Location() != time.UTC {
		t.Errorf("ce_time = %q (%v), want a recent UTC RFC 3339 time", h["ce_time"], err)
	}
	if _, ok := h["ce_datacontenttype"]; ok {
		t.Errorf("ce_datacontenttype is set; the binding carries it in content-type")
	}
}

func TestCloudEventsBinary(t *testing.T) {
	c := codec.CloudEvents{}
	h := map[string]string{}
	b, err := c.Encode(&Order{ID: "o-1", Amount: 3}, h)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"id":"o-1","amount":3}` {
		t.Errorf("value = %s, want the bare JSON data", b)
	}
	checkAttributes(t, h)
	before := maps.Clone(h)
	var o Order
	if err := c.Decode(b, h, &o); err != nil {
		t.Fatal(err)
	}
	if o != (Order{ID: "o-1", Amount: 3}) {
		t.Errorf("decoded %+v", o)
	}
	if !maps.Equal(h, before) {
		t.Errorf("binary Decode changed the headers: %v, was %v", h, before)
	}
}

func TestCloudEventsStructured(t *testing.T) {
	c := codec.CloudEvents{Structured: true}
	h := map[string]string{}
	b, err := c.Encode(Order{ID: "o-1", Amount: 3}, h)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 1 || h["content-type"] != "application/cloudevents+json" {
		t.Errorf("headers = %v, want only content-type application/cloudevents+json", h)
	}
	var env map[string]any
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatal(err)
	}
	if env["datacontenttype"] != "application/json" || env["specversion"] != "1.0" {
		t.Errorf("envelope %s: want datacontenttype application/json, specversion 1.0", b)
	}
	if data, ok := env["data"].(map[string]any); !ok || data["id"] != "o-1" {
		t.Errorf("envelope %s: want data embedded as a JSON object", b)
	}
	if _, ok := env["data_base64"]; ok {
		t.Errorf("envelope %s has data_base64 for JSON data", b)
	}

	var o Order
	if err := c.Decode(b, h, &o); err != nil {
		t.Fatal(err)
	}
	if o != (Order{ID: "o-1", Amount: 3}) {
		t.Errorf("decoded %+v", o)
	}
	// A handler sees the same headers as in binary mode.
	checkAttributes(t, h)
	if h["ce_id"] != env["id"] {
		t.Errorf("ce_id = %q, envelope id %v", h["ce_id"], env["id"])
	}
}

func TestCloudEventsEncodeAttributes(t *testing.T) {
	for _, structured := range []bool{false, true} {
		t.Run(fmt.Sprint("structured=", structured), func(t *testing.T) {
			c := codec.CloudEvents{Structured: structured, Source: "/shop", Type: "com.example.order.created"}
			h := map[string]string{"ce_subject": "o-1", "ce_id": "caller-id", "traceparent": "00-abc-01"}
			b, err := c.Encode(Order{ID: "o-1"}, h)
			if err != nil {
				t.Fatal(err)
			}
			if h["traceparent"] != "00-abc-01" {
				t.Errorf("Encode dropped a non-ce header: %v", h)
			}
			var o Order
			if err := c.Decode(b, h, &o); err != nil {
				t.Fatal(err)
			}
			for k, want := range map[string]string{"ce_source": "/shop", "ce_type": "com.example.order.created", "ce_subject": "o-1"} {
				if h[k] != want {
					t.Errorf("header %s = %q, want %q", k, h[k], want)
				}
			}
			if !eventID.MatchString(h["ce_id"]) {
				t.Errorf("ce_id = %q: the codec must set the id of a new event", h["ce_id"])
			}
		})
	}
}

func TestCloudEventsUniqueIDs(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		h := map[string]string{}
		if _, err := (codec.CloudEvents{}).Encode(1, h); err != nil {
			t.Fatal(err)
		}
		if seen[h["ce_id"]] {
			t.Fatalf("duplicate id %s", h["ce_id"])
		}
		seen[h["ce_id"]] = true
	}
}

func TestCloudEventsEncodeErrors(t *testing.T) {
	for _, c := range []codec.CloudEvents{{}, {Structured: true}} {
		_, err := c.Encode(make(chan int), map[string]string{})
		var ute *json.UnsupportedTypeError
		if !errors.As(err, &ute) {
			t.Errorf("%s: Encode(chan) = %v, want it to wrap the data codec's error", c.Name(), err)
		}
	}
	// A data codec that claims JSON must produce JSON: structured mode
	// embeds it in the envelope as is.
	c := codec.CloudEvents{Structured: true, Data: headerCodec{ct: "application/json", data: "{not json"}}
	var se *json.SyntaxError
	if _, err := c.Encode(1, map[string]string{}); !errors.As(err, &se) {
		t.Errorf("Encode with invalid JSON data = %v, want a *json.SyntaxError", err)
	}
}

// headerCodec encodes every payload as data, with content-type ct and an
// extra header.
type headerCodec struct {
	codec.Codec
	ct, data string
}

func (c headerCodec) Encode(_ any, h map[string]string) ([]byte, error) {
	h["content-type"] = c.ct
	h["x-schema-id"] = "42"
	return []byte(c.data), nil
}

func TestCloudEventsStructuredKeepsDataHeaders(t *testing.T) {
	c := codec.CloudEvents{Structured: true, Data: headerCodec{ct: "application/avro", data: "\x00"}}
	h := map[string]string{}
	b, err := c.Encode(1, h)
	if err != nil {
		t.Fatal(err)
	}
	if h["x-schema-id"] != "42" || h["content-type"] != "application/cloudevents+json" {
		t.Errorf("headers = %v, want the data codec's x-schema-id and the structured content-type", h)
	}
	if !strings.Contains(string(b), `"datacontenttype":"application/avro"`) || !strings.Contains(string(b), `"data_base64"`) {
		t.Errorf("envelope %s: want datacontenttype application/avro and data_base64", b)
	}
}

func TestCloudEventsEncodeNil(t *testing.T) {
	if _, err := (codec.CloudEvents{}).Encode(nil, map[string]string{}); err == nil {
		t.Error("Encode(nil) without Type: want an error")
	}
	h := map[string]string{}
	b, err := codec.CloudEvents{Type: "com.example.tick"}.Encode(nil, h)
	if err != nil || string(b) != "null" || h["ce_type"] != "com.example.tick" {
		t.Errorf("Encode(nil) with Type = %q, %v, headers %v", b, err, h)
	}
}

// TestCloudEventsDecodeForeign decodes events as another client (for example
// a CloudEvents SDK) writes them.
func TestCloudEventsDecodeForeign(t *testing.T) {
	// The JSON format specification's example event.
	const structured = `{
		"specversion" : "1.0",
		"type" : "com.example.someevent",
		"source" : "/mycontext",
		"subject": "larger-context",
		"id" : "A234-1234-1234",
		"time" : "2018-04-05T17:31:00Z",
		"comexampleextension1" : "value",
		"comexampleothervalue" : 5,
		"comexampleflag" : true,
		"comexamplenull" : null,
		"datacontenttype" : "application/json",
		"data" : {"appinfoA" : "abc", "appinfoB" : 123, "appinfoC" : true}
	}`
	type appInfo struct {
		A string `json:"appinfoA"`
		B int    `json:"appinfoB"`
		C bool   `json:"appinfoC"`
	}
	wantHeaders := map[string]string{
		"ce_specversion":          "1.0",
		"ce_type":                 "com.example.someevent",
		"ce_source":               "/mycontext",
		"ce_subject":              "larger-context",
		"ce_id":                   "A234-1234-1234",
		"ce_time":                 "2018-04-05T17:31:00Z",
		"ce_comexampleextension1": "value",
		"ce_comexampleothervalue": "5",
		"ce_comexampleflag":       "true",
		"content-type":            "application/json",
	}
	want := appInfo{"abc", 123, true}

	for _, c := range []codec.Codec{codec.CloudEvents{}, codec.CloudEvents{Structured: true}} {
		t.Run(c.Name()+"/structured", func(t *testing.T) {
			h := map[string]string{"content-type": "application/cloudevents+json; charset=UTF-8"}
			var got appInfo
			if err := c.Decode([]byte(structured), h, &got); err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("data = %+v, want %+v", got, want)
			}
			if !maps.Equal(h, wantHeaders) {
				t.Errorf("headers = %v\nwant      %v", h, wantHeaders)
			}
		})
		t.Run(c.Name()+"/binary", func(t *testing.T) {
			h := maps.Clone(wantHeaders)
			var got appInfo
			err := c.Decode([]byte(`{"appinfoA":"abc","appinfoB":123,"appinfoC":true}`), h, &got)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("data = %+v, want %+v", got, want)
			}
		})
	}
}

func TestCloudEventsStructuredData(t *testing.T) {
	const attrs = `"specversion":"1.0","id":"1","source":"/s","type":"t"`
	tests := []struct {
		name     string
		envelope string
		data     codec.Codec
		want     string // the bytes the data codec sees
		wantCT   string // content-type the data codec sees; "-" for none
	}{
		{"data_base64", `{` + attrs + `,"datacontenttype":"application/octet-stream","data_base64":"AAH+/w=="}`, codec.Raw, "\x00\x01\xfe\xff", "application/octet-stream"},
		{"data_base64 without datacontenttype", `{` + attrs + `,"data_base64":"aGk="}`, codec.Raw, "hi", "-"},
		{"empty data_base64", `{` + attrs + `,"data_base64":""}`, codec.Raw, "", "-"},
		{"data_base64 of JSON", `{` + attrs + `,"datacontenttype":"application/json","data_base64":"eyJhIjoxfQ=="}`, codec.Raw, `{"a":1}`, "application/json"},
		{"JSON data without datacontenttype", `{` + attrs + `,"data":{"a":1}}`, codec.Raw, `{"a":1}`, "application/json"},
		{"JSON suffix", `{` + attrs + `,"datacontenttype":"application/vnd.shop+json","data":[1,2]}`, codec.Raw, `[1,2]`, "application/vnd.shop+json"},
		{"JSON string data", `{` + attrs + `,"data":"a\nb"}`, codec.Raw, `"a\nb"`, "application/json"},
		{"text data", `{` + attrs + `,"datacontenttype":"text/plain","data":"a\nb"}`, codec.Raw, "a\nb", "text/plain"},
		{"null data", `{` + attrs + `,"data":null}`, codec.Raw, "null", "application/json"},
		{"no data", `{` + attrs + `}`, codec.Raw, "", "-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := codec.CloudEvents{Data: tt.data}
			h := map[string]string{"content-type": "application/cloudevents+json"}
			var got []byte
			if err := c.Decode([]byte(tt.envelope), h, &got); err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("data = %q, want %q", got, tt.want)
			}
			ct, ok := h["content-type"]
			if !ok {
				ct = "-"
			}
			if ct != tt.wantCT {
				t.Errorf("content-type = %q, want %q", ct, tt.wantCT)
			}
		})
	}
}

// TestCloudEventsStructuredBase64 checks that data whose media type is not
// JSON travels as data_base64.
func TestCloudEventsStructuredBase64(t *testing.T) {
	c := codec.CloudEvents{Structured: true, Data: codec.Raw}
	in := []byte{0, 0xff, 'x'}
	h := map[string]string{}
	b, err := c.Encode(in, h)
	if err != nil {
		t.Fatal(err)
	}
	var env map[string]any
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatal(err)
	}
	if env["data_base64"] != "AP94" || env["data"] != nil {
		t.Errorf("envelope %s: want data_base64 AP94 and no data", b)
	}
	if _, ok := env["datacontenttype"]; ok {
		t.Errorf("envelope %s: the raw codec names no media type, so neither should the event", b)
	}
}

func TestCloudEventsDecodeErrors(t *testing.T) {
	const ce = "application/cloudevents+json"
	valid := map[string]string{"ce_specversion": "1.0", "ce_id": "1", "ce_source": "/s", "ce_type": "t"}
	without := func(k string) map[string]string { h := maps.Clone(valid); delete(h, k); return h }
	with := func(k, v string) map[string]string { h := maps.Clone(valid); h[k] = v; return h }
	tests := []struct {
		name    string
		value   string
		headers map[string]string
		errText string
	}{
		{"plain JSON record", `{"id":"o-1"}`, map[string]string{"content-type": "application/json"}, "not a CloudEvent"},
		{"no headers", `{"id":"o-1"}`, nil, "not a CloudEvent"},
		{"batch format", `[]`, map[string]string{"content-type": "application/cloudevents-batch+json"}, "unsupported CloudEvents format"},
		{"avro format", `x`, map[string]string{"content-type": "application/cloudevents+avro"}, "unsupported CloudEvents format"},

		{"binary: empty specversion", `1`, with("ce_specversion", ""), "specversion"},
		{"binary: specversion 0.3", `1`, with("ce_specversion", "0.3"), `unsupported specversion "0.3"`},
		{"binary: no id", `1`, without("ce_id"), "id"},
		{"binary: empty id", `1`, with("ce_id", ""), "id"},
		{"binary: no source", `1`, without("ce_source"), "source"},
		{"binary: no type", `1`, without("ce_type"), "type"},
		{"binary: no id, source, type", `1`, map[string]string{"ce_specversion": "1.0"}, "id, source, type"},
		{"binary: bad data", `{`, valid, "unexpected end of JSON input"},
		{"binary: data of another media type", `1`, with("content-type", "text/plain"), `content-type "text/plain" is not`},

		{"structured: not JSON", `specversion=1.0`, map[string]string{"content-type": ce}, "structured event"},
		{"structured: empty", ``, map[string]string{"content-type": ce}, "structured event"},
		{"structured: null", `null`, map[string]string{"content-type": ce}, "null"},
		{"structured: array", `[{"specversion":"1.0"}]`, map[string]string{"content-type": ce}, "structured event"},
		{"structured: trailing data", `{"specversion":"1.0","id":"1","source":"/s","type":"t"}x`, map[string]string{"content-type": ce}, "structured event"},
		{"structured: no specversion", `{"id":"1","source":"/s","type":"t"}`, map[string]string{"content-type": ce}, "specversion"},
		{"structured: null specversion", `{"specversion":null,"id":"1","source":"/s","type":"t"}`, map[string]string{"content-type": ce}, "specversion"},
		{"structured: numeric specversion", `{"specversion":1.0,"id":"1","source":"/s","type":"t"}`, map[string]string{"content-type": ce}, `attribute "specversion" is not a string`},
		{"structured: boolean id", `{"specversion":"1.0","id":true,"source":"/s","type":"t"}`, map[string]string{"content-type": ce}, `attribute "id" is not a string`},
		{"structured: no id", `{"specversion":"1.0","source":"/s","type":"t"}`, map[string]string{"content-type": ce}, "id"},
		{"structured: empty type", `{"specversion":"1.0","id":"1","source":"/s","type":""}`, map[string]string{"content-type": ce}, "type"},
		{"structured: object attribute", `{"specversion":"1.0","id":"1","source":"/s","type":"t","ext":{}}`, map[string]string{"content-type": ce}, `attribute "ext"`},
		{"structured: data and data_base64", `{"specversion":"1.0","id":"1","source":"/s","type":"t","data":1,"data_base64":"MQ=="}`, map[string]string{"content-type": ce}, "both"},
		{"structured: invalid data_base64", `{"specversion":"1.0","id":"1","source":"/s","type":"t","data_base64":"!!"}`, map[string]string{"content-type": ce}, "data_base64"},
		{"structured: data_base64 not a string", `{"specversion":"1.0","id":"1","source":"/s","type":"t","data_base64":12}`, map[string]string{"content-type": ce}, "data_base64"},
		{"structured: bad data", `{"specversion":"1.0","id":"1","source":"/s","type":"t","data":"x"}`, map[string]string{"content-type": ce}, "cannot unmarshal string"},
		{"structured: data of another media type", `{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"text/plain","data":"x"}`, map[string]string{"content-type": ce}, `content-type "text/plain" is not`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v int
			err := codec.CloudEvents{}.Decode([]byte(tt.value), tt.headers, &v)
			wantDecodeError(t, err)
			if !strings.Contains(err.Error(), tt.errText) {
				t.Errorf("error %q does not mention %q", err, tt.errText)
			}
		})
	}
}

// failingCodec fails every decode with a retryable (not a *DecodeError)
// error, like a codec whose schema registry is unreachable.
type failingCodec struct{ codec.Codec }

var errUnavailable = errors.New("schema registry unavailable")

func (failingCodec) Decode([]byte, map[string]string, any) error { return errUnavailable }

func TestCloudEventsDataErrorPassesThrough(t *testing.T) {
	h := map[string]string{"ce_specversion": "1.0", "ce_id": "1", "ce_source": "/s", "ce_type": "t"}
	var v int
	err := codec.CloudEvents{Data: failingCodec{codec.JSON}}.Decode([]byte("1"), h, &v)
	if err != errUnavailable {
		t.Errorf("Decode = %v; want the data codec's error unchanged, so it stays retryable", err)
	}
}

func ExampleCloudEvents() {
	c := codec.CloudEvents{Source: "/shop/orders"}
	h := map[string]string{}
	b, err := c.Encode(Order{ID: "o-1", Amount: 12.5}, h)
	if err != nil {
		panic(err)
	}
	fmt.Println(string(b))
	// ce_id and ce_time differ on every call.
	for _, k := range []string{"ce_specversion", "ce_source", "ce_type", "content-type"} {
		fmt.Printf("%s: %s\n", k, h[k])
	}

	var o Order
	err = c.Decode(b, h, &o)
	fmt.Printf("%+v %v\n", o, err)
	// Output:
	// {"id":"o-1","amount":12.5}
	// ce_specversion: 1.0
	// ce_source: /shop/orders
	// ce_type: codec_test.Order
	// content-type: application/json
	// {ID:o-1 Amount:12.5} <nil>
}
