package fn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"time"

	"github.com/microfn/microfn/codec"
	"github.com/microfn/microfn/internal/delivery"
)

// Func is a declared subscriber: a handler bound to a topic with its
// options. Subscribe creates and registers one; New creates one without
// registering it, for Serve and fntest.
type Func struct {
	name, topic string
	spec        spec
	raw         bool // the payload type is []byte: no codec
	call        func(ctx context.Context, m *Message) error
}

type spec struct {
	group       string
	codec       codec.Codec
	timeout     time.Duration
	maxAttempts int
	deadLetter  string
	err         error
}

// Option configures a subscriber.
type Option func(*spec)

// Group sets the consumer group. Default: the subscriber's name.
func Group(name string) Option {
	return func(s *spec) {
		if name == "" {
			s.err = errors.Join(s.err, errors.New("group must not be empty"))
		}
		s.group = name
	}
}

// Codec sets the payload codec. Default: codec.JSON. A handler whose
// payload type is []byte always receives the raw record value.
func Codec(c codec.Codec) Option {
	return func(s *spec) {
		if c == nil {
			s.err = errors.Join(s.err, errors.New("codec must not be nil"))
		}
		s.codec = c
	}
}

// Timeout bounds one invocation of the handler. Default: 30s. The
// handler's context is cancelled at the deadline, and the attempt has
// failed; under the restarter the process is then terminated.
func Timeout(d time.Duration) Option {
	return func(s *spec) {
		if d <= 0 {
			s.err = errors.Join(s.err, fmt.Errorf("timeout must be positive, got %v", d))
		}
		s.timeout = d
	}
}

// MaxAttempts sets how many times a message is tried before it is
// dead-lettered. Default: 3. 1 means no retry.
func MaxAttempts(n int) Option {
	return func(s *spec) {
		if n < 1 {
			s.err = errors.Join(s.err, fmt.Errorf("max attempts must be at least 1, got %d", n))
		}
		s.maxAttempts = n
	}
}

// DeadLetter sets the dead-letter topic. Default: the topic with ".dlq"
// appended.
func DeadLetter(topic string) Option {
	return func(s *spec) {
		if topic == "" {
			s.err = errors.Join(s.err, errors.New("dead-letter topic must not be empty"))
		}
		s.deadLetter = topic
	}
}

// New returns a subscriber named name on topic, without registering it.
// Invalid arguments are reported by Err, and by Main, not by a panic.
func New[T any](name, topic string, h func(context.Context, T) error, opts ...Option) *Func {
	f := &Func{name: name, topic: topic}
	f.spec = spec{group: name, codec: codec.JSON, timeout: delivery.DefaultTimeout, maxAttempts: delivery.DefaultMaxAttempts}
	if topic != "" {
		f.spec.deadLetter = topic + delivery.DeadLetterSuffix
	}
	for _, o := range opts {
		o(&f.spec)
	}
	switch {
	case name == "":
		f.spec.err = errors.Join(f.spec.err, errors.New("name must not be empty"))
	case topic == "":
		f.spec.err = errors.Join(f.spec.err, errors.New("topic must not be empty"))
	case h == nil:
		f.spec.err = errors.Join(f.spec.err, errors.New("handler must not be nil"))
	}
	f.raw = reflect.TypeFor[T]() == reflect.TypeFor[[]byte]()
	f.call = func(ctx context.Context, m *Message) error {
		var v T
		if f.raw {
			v = any(m.Value).(T)
		} else if err := f.spec.codec.Decode(m.Value, m.Headers, &v); err != nil {
			return err
		}
		return h(ctx, v)
	}
	return f
}

// payloadCodec is the codec that decodes the payload (codec.Raw for a
// []byte payload).
func (f *Func) payloadCodec() codec.Codec {
	if f.raw {
		return codec.Raw
	}
	return f.spec.codec
}

// policy is what the subscriber's options say about carrying out its
// messages' attempts.
func (f *Func) policy(log *slog.Logger) delivery.Policy {
	return delivery.Policy{Function: f.name, DeadLetter: f.spec.deadLetter, MaxAttempts: f.spec.maxAttempts, Log: log}
}

// Err reports what is wrong with the declaration, or nil.
func (f *Func) Err() error {
	if f.spec.err != nil {
		return fmt.Errorf("subscriber %q: %w", f.name, f.spec.err)
	}
	return nil
}

var registry struct {
	sync.Mutex
	funcs []*Func
}

// Subscribe declares a subscriber of this binary: h handles the messages of
// topic, decoded into T by the subscriber's codec (a []byte T receives the
// raw value). Call it before Main or Serve, typically from main.
func Subscribe[T any](name, topic string, h func(context.Context, T) error, opts ...Option) {
	f := New(name, topic, h, opts...)
	registry.Lock()
	defer registry.Unlock()
	for _, g := range registry.funcs {
		if g.name == name {
			f.spec.err = errors.Join(f.spec.err, errors.New("declared twice"))
		}
	}
	registry.funcs = append(registry.funcs, f)
}

// declared returns the subscribers declared with Subscribe, in order.
func declared() []*Func {
	registry.Lock()
	defer registry.Unlock()
	return append([]*Func(nil), registry.funcs...)
}
