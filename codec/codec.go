// Package codec turns a handler's payload into a Kafka record (value and
// headers) and back.
//
// A codec owns the record value and the headers it needs, at least
// "content-type". Decoding a record a codec does not understand returns a
// *DecodeError: the message can never succeed, so microfn dead-letters it at
// once instead of retrying.
package codec

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
)

// HeaderContentType is the record header that carries the payload's media
// type, as the CloudEvents Kafka protocol binding names it.
const HeaderContentType = "content-type"

// Codec encodes and decodes payloads.
//
// Encode writes v as a record value and sets the headers it needs in h
// (never nil). Decode reads a record's value and headers into v, a non-nil
// pointer; it may add headers to h (the CloudEvents codec adds the event's
// attributes in structured mode so handlers see them the same way in both
// modes). Implementations must be safe for concurrent use.
type Codec interface {
	// Name is the codec's short name, as it appears in manifests and flags.
	Name() string
	Encode(v any, h map[string]string) ([]byte, error)
	Decode(data []byte, h map[string]string, v any) error
}

// DecodeError reports a record that a codec cannot decode. It is permanent:
// retrying the same bytes cannot succeed.
type DecodeError struct {
	Codec string
	Err   error
}

func (e *DecodeError) Error() string { return fmt.Sprintf("decode %s payload: %v", e.Codec, e.Err) }
func (e *DecodeError) Unwrap() error { return e.Err }

// IsDecodeError reports whether err is, or wraps, a *DecodeError.
func IsDecodeError(err error) bool {
	var de *DecodeError
	return errors.As(err, &de)
}

var (
	registryMu sync.RWMutex
	registry   = map[string]Codec{}
)

// Register makes a codec available to ByName. Codecs in sub-packages (for
// example protobuf) register themselves when imported.
func Register(c Codec) {
	registryMu.Lock()
	defer registryMu.Unlock()
	registry[c.Name()] = c
}

// ByName returns the registered codec with the given name.
func ByName(name string) (Codec, error) {
	registryMu.RLock()
	defer registryMu.RUnlock()
	if c, ok := registry[name]; ok {
		return c, nil
	}
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return nil, fmt.Errorf("unknown codec %q (known: %s)", name, strings.Join(names, ", "))
}

// checkContentType refuses a record whose content-type header names another
// media type. A record without the header is accepted: plain Kafka producers
// rarely set it.
func checkContentType(codec string, h map[string]string, accept ...string) error {
	ct, ok := h[HeaderContentType]
	if !ok || ct == "" {
		return nil
	}
	mt := strings.TrimSpace(strings.ToLower(strings.SplitN(ct, ";", 2)[0]))
	for _, a := range accept {
		if mt == a {
			return nil
		}
	}
	return &DecodeError{Codec: codec, Err: fmt.Errorf("content-type %q is not %s", ct, strings.Join(accept, " or "))}
}
