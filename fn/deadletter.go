package fn

import (
	"maps"
	"strconv"
	"time"
)

// Headers microfn adds to a dead-lettered record, next to the record's own
// key, value and headers, which it keeps unchanged.
const (
	// HeaderReason says why the message was dead-lettered: ReasonExhausted,
	// ReasonPermanent or ReasonDecode.
	HeaderReason = "fn_reason"
	// HeaderFailure is the kind of the last failure (a Failure constant).
	HeaderFailure = "fn_failure"
	// HeaderError is the last failure's message, at most 4 KiB.
	HeaderError     = "fn_error"
	HeaderAttempts  = "fn_attempts"
	HeaderFunction  = "fn_function"
	HeaderTopic     = "fn_original_topic"
	HeaderPartition = "fn_original_partition"
	HeaderOffset    = "fn_original_offset"
	HeaderTime      = "fn_dead_lettered_at"
)

// Reasons for dead-lettering, in HeaderReason.
const (
	ReasonExhausted = "exhausted" // every attempt failed
	ReasonPermanent = "permanent" // the handler returned Permanent(err)
	ReasonDecode    = "decode"    // the payload cannot be decoded
)

const maxErrorHeader = 4 << 10

// DeadLetterEvent returns the dead-letter record for m after the failed
// invocation r: the original key, value and headers plus headers naming
// the failure, the attempts, the function and the record's origin.
func (f *Func) DeadLetterEvent(m *Message, r Result) Event {
	h := maps.Clone(m.Headers)
	if h == nil {
		h = map[string]string{}
	}
	reason := ReasonExhausted
	switch r.Failure {
	case FailurePermanent:
		reason = ReasonPermanent
	case FailureDecode:
		reason = ReasonDecode
	}
	errText := ""
	if r.Err != nil {
		errText = r.Err.Error()
	}
	if len(errText) > maxErrorHeader {
		errText = errText[:maxErrorHeader]
	}
	h[HeaderReason] = reason
	h[HeaderFailure] = r.Failure
	h[HeaderError] = errText
	h[HeaderAttempts] = strconv.Itoa(m.Attempt)
	h[HeaderFunction] = f.name
	h[HeaderTopic] = m.Topic
	h[HeaderPartition] = strconv.FormatInt(int64(m.Partition), 10)
	h[HeaderOffset] = strconv.FormatInt(m.Offset, 10)
	h[HeaderTime] = time.Now().UTC().Format(time.RFC3339Nano)
	return Event{Topic: f.spec.deadLetter, Key: m.Key, Value: m.Value, Headers: h}
}
