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
	// Set by the restarter when the process itself failed.
	HeaderExitCode = "fn_exit_code" // the process's exit code
	HeaderSignal   = "fn_signal"    // the signal that ended the process
	HeaderStderr   = "fn_stderr"    // the tail of the process's output, at most 4 KiB
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
	return DeadLetterRecord(f.name, f.spec.deadLetter, m, r)
}

// DeadLetterRecord is DeadLetterEvent for a function known by name and
// dead-letter topic, as the restarter knows it.
func DeadLetterRecord(function, topic string, m *Message, r Result) Event {
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
	errText = Truncate(errText, maxErrorHeader)
	h[HeaderReason] = reason
	h[HeaderFailure] = r.Failure
	h[HeaderError] = errText
	h[HeaderAttempts] = strconv.Itoa(m.Attempt)
	h[HeaderFunction] = function
	h[HeaderTopic] = m.Topic
	h[HeaderPartition] = strconv.FormatInt(int64(m.Partition), 10)
	h[HeaderOffset] = strconv.FormatInt(m.Offset, 10)
	h[HeaderTime] = time.Now().UTC().Format(time.RFC3339Nano)
	return Event{Topic: topic, Key: m.Key, Value: m.Value, Headers: h}
}

// Truncate cuts s to at most n bytes, keeping the end, where the last
// error lines are.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
