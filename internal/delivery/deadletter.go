package delivery

import (
	"maps"
	"strconv"
	"time"
)

// Record is a Kafka record to publish.
type Record struct {
	Topic string
	// Key is nil for a record without a key.
	Key []byte
	// Value is nil for a null value (a tombstone), empty for an empty one.
	Value   []byte
	Headers map[string]string
}

// Message is a consumed record, as far as delivery needs it.
type Message struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
	Headers   map[string]string
}

// Headers a dead letter has besides the original record's own.
const (
	// HeaderReason is why it was dead-lettered: a Reason.
	HeaderReason = "fn_reason"
	// HeaderFailure is the kind of the last failure: a Failure.
	HeaderFailure = "fn_failure"
	// HeaderError is the last failure's message, at most MaxHeader bytes
	// (the end is kept).
	HeaderError = "fn_error"
	// HeaderAttempts is how many attempts were made.
	HeaderAttempts = "fn_attempts"
	// HeaderFunction names the subscriber (or deployment).
	HeaderFunction = "fn_function"
	// HeaderTopic, HeaderPartition and HeaderOffset say where the
	// original record was.
	HeaderTopic     = "fn_original_topic"
	HeaderPartition = "fn_original_partition"
	HeaderOffset    = "fn_original_offset"
	// HeaderTime is when it was dead-lettered, RFC 3339 in UTC.
	HeaderTime = "fn_dead_lettered_at"
	// HeaderExitCode is the exit code of a function process that failed
	// by exiting (FailureCrash, FailureExit, or a timeout or memory
	// failure that ended in an exit).
	HeaderExitCode = "fn_exit_code"
	// HeaderSignal names the signal that ended a function process.
	HeaderSignal = "fn_signal"
	// HeaderStderr is the head and tail of what the function process wrote
	// to stderr, at most MaxHeader bytes.
	HeaderStderr = "fn_stderr"
)

// deadLetterHeaders are the headers NewDeadLetter adds.
var deadLetterHeaders = []string{HeaderReason, HeaderFailure, HeaderError, HeaderAttempts, HeaderFunction,
	HeaderTopic, HeaderPartition, HeaderOffset, HeaderTime, HeaderExitCode, HeaderSignal, HeaderStderr}

// MaxHeader bounds the text headers of a dead letter.
const MaxHeader = 4 << 10

// NewDeadLetter returns the dead letter of m, to be published on topic,
// after its attempt number attempt ended with r: m's key, value and
// headers, and headers naming the failure, the attempts, the function
// and the record's origin.
func NewDeadLetter(topic, function string, m Message, attempt int, r Result, now time.Time) Record {
	h := make(map[string]string, len(m.Headers)+len(deadLetterHeaders))
	maps.Copy(h, m.Headers)
	errText := ""
	if r.Err != nil {
		errText = Truncate(r.Err.Error(), MaxHeader)
	}
	h[HeaderReason] = string(ReasonFor(r.Failure))
	h[HeaderFailure] = string(r.Failure)
	h[HeaderError] = errText
	h[HeaderAttempts] = strconv.Itoa(attempt)
	h[HeaderFunction] = function
	h[HeaderTopic] = m.Topic
	h[HeaderPartition] = strconv.FormatInt(int64(m.Partition), 10)
	h[HeaderOffset] = strconv.FormatInt(m.Offset, 10)
	h[HeaderTime] = now.UTC().Format(time.RFC3339Nano)
	if p := r.Process; p != nil {
		if processFailure(r.Failure) {
			if p.Signal != "" {
				h[HeaderSignal] = p.Signal
			} else if p.Code >= 0 {
				h[HeaderExitCode] = strconv.Itoa(p.Code)
			}
		}
		if p.Stderr != "" {
			h[HeaderStderr] = Truncate(p.Stderr, MaxHeader)
		}
	}
	return Record{Topic: topic, Key: m.Key, Value: m.Value, Headers: h}
}

// processFailure reports whether f is a failure of the process itself,
// whose exit code or signal says something; a handler's error is
// reported by a process that then exits normally.
func processFailure(f Failure) bool {
	switch f {
	case FailureCrash, FailureSignal, FailureExit, FailureMemory, FailureTimeout:
		return true
	}
	return false
}

// DeadLetterInfo is what a dead letter's headers say about it.
type DeadLetterInfo struct {
	Reason    Reason
	Failure   Failure
	Error     string
	Attempts  int
	Function  string
	Topic     string
	Partition int32
	Offset    int64
	// Headers are the original record's headers, without those
	// NewDeadLetter added.
	Headers map[string]string
}

// ParseDeadLetter reads a dead letter's headers. ok is false when they are
// not those of a dead letter written by microfn (no original topic).
func ParseDeadLetter(headers map[string]string) (info DeadLetterInfo, ok bool) {
	topic := headers[HeaderTopic]
	if topic == "" {
		return DeadLetterInfo{}, false
	}
	info = DeadLetterInfo{Reason: Reason(headers[HeaderReason]), Failure: Failure(headers[HeaderFailure]),
		Error: headers[HeaderError], Function: headers[HeaderFunction], Topic: topic,
		Headers: maps.Clone(headers)}
	info.Attempts, _ = strconv.Atoi(headers[HeaderAttempts])
	p, _ := strconv.ParseInt(headers[HeaderPartition], 10, 32)
	info.Partition = int32(p)
	info.Offset, _ = strconv.ParseInt(headers[HeaderOffset], 10, 64)
	if info.Headers == nil {
		info.Headers = map[string]string{}
	}
	for _, k := range deadLetterHeaders {
		delete(info.Headers, k)
	}
	return info, true
}

// Truncate cuts s to at most n bytes, keeping the end, where the last
// error lines are.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
