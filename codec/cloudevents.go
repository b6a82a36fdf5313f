package codec

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"time"
)

// CloudEvents wraps a data codec (JSON when nil) in a CloudEvent, following
// the CloudEvents 1.0 Kafka protocol binding, so that functions interoperate
// with other CloudEvents producers and consumers.
//
// In binary mode the attributes travel as "ce_" headers and the record value
// is the data, with its media type in "content-type". In structured mode the
// value is the JSON event envelope. Decode accepts both modes whatever
// Structured says, and in structured mode copies the attributes into the
// headers, so a handler sees "ce_id", "ce_source", ... and "content-type"
// (the data's media type) in either mode.
//
// When encoding, a "ce_" header the caller already put in h (for example
// "ce_subject") becomes an attribute of the event in both modes; specversion,
// id, source, type and time are always set by the codec.
type CloudEvents struct {
	Structured bool   // encode in structured mode; decode accepts both modes always
	Source     string // ce source when encoding; default "microfn"
	Type       string // ce type when encoding; default: the Go type name of v, e.g. "main.Order"
	Data       Codec  // codec for the data; default JSON
}

func init() {
	Register(CloudEvents{})
	Register(CloudEvents{Structured: true})
}

const (
	ceHeaderPrefix        = "ce_"
	ceSpecVersion         = "1.0"
	ceStructuredMediaType = "application/cloudevents+json"
)

// Name is "cloudevents" in binary mode and "cloudevents-structured" in
// structured mode, whatever the data codec.
func (c CloudEvents) Name() string {
	if c.Structured {
		return "cloudevents-structured"
	}
	return "cloudevents"
}

func (c CloudEvents) data() Codec {
	if c.Data == nil {
		return JSON
	}
	return c.Data
}

func (c CloudEvents) Encode(v any, h map[string]string) ([]byte, error) {
	typ := c.Type
	if typ == "" {
		t := reflect.TypeOf(v)
		if t == nil {
			return nil, errors.New("encode cloudevents payload: cannot name the event type of a nil payload; set CloudEvents.Type")
		}
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		typ = t.String()
	}
	src := c.Source
	if src == "" {
		src = "microfn"
	}
	attrs := map[string]string{
		"specversion": ceSpecVersion,
		"id":          newEventID(),
		"source":      src,
		"type":        typ,
		"time":        time.Now().UTC().Format(time.RFC3339Nano),
	}

	if !c.Structured {
		data, err := c.data().Encode(v, h)
		if err != nil {
			return nil, fmt.Errorf("encode cloudevents payload: %w", err)
		}
		for k, a := range attrs {
			h[ceHeaderPrefix+k] = a
		}
		return data, nil
	}

	// The data codec writes into its own map: its content-type describes the
	// data, not the record, and becomes the datacontenttype attribute.
	dh := map[string]string{}
	data, err := c.data().Encode(v, dh)
	if err != nil {
		return nil, fmt.Errorf("encode cloudevents payload: %w", err)
	}
	env := map[string]any{}
	for k, s := range h {
		if name, ok := strings.CutPrefix(k, ceHeaderPrefix); ok && name != "" {
			env[name] = s
		}
	}
	// Members the envelope itself defines cannot come from headers.
	delete(env, "data")
	delete(env, "data_base64")
	delete(env, "datacontenttype")
	for k, a := range attrs {
		env[k] = a
	}
	dct := dh[HeaderContentType]
	if dct != "" {
		env["datacontenttype"] = dct
	}
	if isJSONMediaType(dct) {
		env["data"] = json.RawMessage(data)
	} else {
		env["data_base64"] = base64.StdEncoding.EncodeToString(data)
	}
	b, err := json.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("encode cloudevents payload: %w", err)
	}
	// The attributes are in the envelope now, and only there.
	for k := range h {
		if strings.HasPrefix(k, ceHeaderPrefix) && k != ceHeaderPrefix {
			delete(h, k)
		}
	}
	for k, s := range dh {
		h[k] = s
	}
	h[HeaderContentType] = ceStructuredMediaType
	return b, nil
}

// Decode returns the data codec's error unchanged: it is a *DecodeError when
// the data is bad, and anything else (say, a schema registry being down)
// must stay retryable.
func (c CloudEvents) Decode(data []byte, h map[string]string, v any) error {
	if h == nil {
		// Structured mode hands the data codec the data's content-type
		// through the headers.
		h = map[string]string{}
	}
	mt := mediaType(h[HeaderContentType])
	structured := strings.HasPrefix(mt, "application/cloudevents")
	var attr func(name string) (string, bool)
	var attrs map[string]string
	if structured {
		if mt != ceStructuredMediaType {
			return c.decodeError(fmt.Errorf("unsupported CloudEvents format %q: only %s is supported", h[HeaderContentType], ceStructuredMediaType))
		}
		var err error
		attrs, data, err = parseStructured(data)
		if err != nil {
			return c.decodeError(err)
		}
		attr = func(name string) (string, bool) { a, ok := attrs[name]; return a, ok }
	} else {
		if _, ok := h[ceHeaderPrefix+"specversion"]; !ok {
			return c.decodeError(errors.New("not a CloudEvent: no ce_specversion header and content-type is not " + ceStructuredMediaType))
		}
		attr = func(name string) (string, bool) { a, ok := h[ceHeaderPrefix+name]; return a, ok }
	}
	if err := validateAttributes(attr); err != nil {
		return c.decodeError(err)
	}
	if structured {
		dct, ok := attrs["datacontenttype"]
		delete(attrs, "datacontenttype")
		for k, a := range attrs {
			h[ceHeaderPrefix+k] = a
		}
		if ok {
			h[HeaderContentType] = dct
		} else {
			delete(h, HeaderContentType)
		}
	}
	return c.data().Decode(data, h, v)
}

func (c CloudEvents) decodeError(err error) error {
	return &DecodeError{Codec: c.Name(), Err: err}
}

// parseStructured reads a JSON event envelope into its attributes (as the
// strings a binary-mode header would carry) and its data bytes.
func parseStructured(b []byte) (map[string]string, []byte, error) {
	var env map[string]json.RawMessage
	if err := json.Unmarshal(b, &env); err != nil {
		return nil, nil, fmt.Errorf("structured event: %w", err)
	}
	if env == nil {
		return nil, nil, errors.New("structured event: envelope is null, not an object")
	}
	raw, hasData := env["data"]
	b64, hasB64 := env["data_base64"]
	delete(env, "data")
	delete(env, "data_base64")
	if hasData && hasB64 {
		return nil, nil, errors.New("structured event: both data and data_base64 are present")
	}

	attrs := make(map[string]string, len(env))
	for k, r := range env {
		// Unmarshal has validated r, so its first byte tells the JSON type.
		switch r[0] {
		case 'n':
			// The JSON format reads a null attribute as an absent one.
		case '"':
			var s string
			if err := json.Unmarshal(r, &s); err != nil {
				return nil, nil, fmt.Errorf("structured event: attribute %q: %w", k, err)
			}
			attrs[k] = s
		case '{', '[':
			return nil, nil, fmt.Errorf("structured event: attribute %q is not a string, number or boolean", k)
		default:
			if ceStringAttributes[k] {
				return nil, nil, fmt.Errorf("structured event: attribute %q is not a string", k)
			}
			// Extensions may be numbers or booleans; they keep their JSON
			// spelling, as a binary header would carry them.
			attrs[k] = string(r)
		}
	}

	var data []byte
	switch {
	case hasB64:
		var s string
		if err := json.Unmarshal(b64, &s); err != nil {
			return nil, nil, fmt.Errorf("structured event: data_base64 is not a string: %w", err)
		}
		d, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, nil, fmt.Errorf("structured event: data_base64: %w", err)
		}
		data = d
	case hasData:
		dct, ok := attrs["datacontenttype"]
		if !ok {
			// The JSON format reads data without a datacontenttype as JSON.
			attrs["datacontenttype"] = "application/json"
			data = raw
			break
		}
		var s string
		if !isJSONMediaType(dct) && json.Unmarshal(raw, &s) == nil {
			// Non-JSON data (say, text/plain) is carried as a JSON string.
			data = []byte(s)
		} else {
			data = raw
		}
	}
	return attrs, data, nil
}

// ceStringAttributes are the context attributes the specification defines;
// all of them are strings in the JSON format.
var ceStringAttributes = map[string]bool{
	"specversion": true, "id": true, "source": true, "type": true,
	"datacontenttype": true, "dataschema": true, "subject": true, "time": true,
}

// validateAttributes checks the attributes every CloudEvent must carry.
func validateAttributes(attr func(name string) (string, bool)) error {
	if v, ok := attr("specversion"); v != ceSpecVersion {
		if !ok {
			return errors.New("missing required attribute specversion")
		}
		return fmt.Errorf("unsupported specversion %q (want %q)", v, ceSpecVersion)
	}
	var missing []string
	for _, k := range []string{"id", "source", "type"} {
		if a, _ := attr(k); a == "" {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing required attribute(s) %s", strings.Join(missing, ", "))
	}
	return nil
}

// newEventID returns 16 random bytes in hex. math/rand/v2's global source is
// seeded per process from the OS and is plenty for unique ids; crypto/rand
// would add its FIPS module's package initialisation (about 0.25 ms) and
// some 240 KB to every function binary.
func newEventID() string {
	return fmt.Sprintf("%016x%016x", rand.Uint64(), rand.Uint64())
}

// mediaType returns a content-type's media type, lower-cased and without
// parameters.
func mediaType(ct string) string {
	mt, _, _ := strings.Cut(ct, ";")
	return strings.ToLower(strings.TrimSpace(mt))
}

// isJSONMediaType reports whether data of this content-type is JSON and can
// be embedded in a structured envelope as a JSON value.
func isJSONMediaType(ct string) bool {
	mt := mediaType(ct)
	return mt == "application/json" || mt == "text/json" || strings.HasSuffix(mt, "+json")
}
