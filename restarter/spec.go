package restarter

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/microfn/microfn/internal/kconn"
)

// Order says which messages of a deployment may run at the same time.
type Order string

const (
	// OrderKey: messages with the same key run one at a time, in offset
	// order; different keys run in parallel up to the pool size; a message
	// without a key has no constraint. The default.
	OrderKey Order = "key"
	// OrderPartition: one message at a time per partition.
	OrderPartition Order = "partition"
	// OrderNone: no constraint; up to the pool size at once.
	OrderNone Order = "none"
)

// Spec describes a deployment: one subscriber of one function binary on
// one topic, with a pool of warm processes. Zero values mean defaults.
type Spec struct {
	// Name identifies the deployment: letters, digits, '.', '_', '-'.
	Name string `json:"name"`
	// Binary is the executable's path; Args are passed to it.
	Binary string   `json:"binary"`
	Args   []string `json:"args,omitempty"`
	// Env adds K=V entries to the function's environment.
	Env []string `json:"env,omitempty"`
	// KafkaEnv gives the function processes the engine's Kafka connection
	// (Config.FunctionKafkaEnv: FN_BROKERS and the FN_TLS_*, FN_SASL_*
	// settings), for a function that opens Kafka clients of its own.
	KafkaEnv bool `json:"kafka_env,omitempty"`
	// Plain marks an executable not built with fn: it gets the value on
	// stdin and the key and headers in FN_KEY and FN_HEADER_<NAME>
	// variables; exit code 0 acknowledges. A plain process starts when its
	// message arrives (its environment depends on the message), so it is
	// not kept warm.
	Plain bool `json:"plain,omitempty"`
	// Subscriber chooses the binary's subscriber (FN_SUBSCRIBER) when it
	// declares several.
	Subscriber string `json:"subscriber,omitempty"`
	Topic      string `json:"topic"`
	// Group defaults to Name.
	Group string `json:"group,omitempty"`
	// DeadLetter defaults to Topic + ".dlq".
	DeadLetter string `json:"dead_letter,omitempty"`
	// Pool fixes the pool's size: shorthand for MinPool = MaxPool = Pool;
	// default 1 when MaxPool is not set either. The pool keeps that many
	// processes warm, and runs at most that many messages at once.
	Pool int `json:"pool,omitempty"`
	// MinPool and MaxPool let the pool follow the work: it grows, up to
	// MaxPool, while runnable messages wait for a process, and shrinks
	// after ScaleDownAfter with fewer busy, down to MinPool, which may be
	// 0 (the first message then waits for a process to start). Set
	// MaxPool to use them; WithDefaults sets both from Pool otherwise.
	MinPool int `json:"min_pool"`
	MaxPool int `json:"max_pool"`
	// ScaleDownAfter is the quiet period after which a pool above
	// MinPool shrinks to what was busy meanwhile; default 30s.
	ScaleDownAfter Duration `json:"scale_down_after,omitempty"`
	// Timeout bounds one invocation; default 30s. At the deadline the
	// process group gets SIGTERM, then SIGKILL after KillGrace.
	Timeout Duration `json:"timeout,omitempty"`
	// MaxAttempts before dead-lettering; default 3.
	MaxAttempts int `json:"max_attempts,omitempty"`
	// Order defaults to OrderKey.
	Order Order `json:"order,omitempty"`
	// MemoryLimit caps one invocation's data memory (RLIMIT_DATA) in bytes;
	// 0: none. Go functions also get GOMEMLIMIT at 90% of it.
	MemoryLimit int64 `json:"memory_limit,omitempty"`
}

// Defaults for Spec fields left zero.
const (
	DefaultPool = 1
	// DefaultScaleDownAfter is the default Spec.ScaleDownAfter.
	DefaultScaleDownAfter = 30 * time.Second
	DefaultTimeout        = 30 * time.Second
	DefaultMaxAttempts    = 3
	// KillGrace is how long a process has between SIGTERM and SIGKILL.
	KillGrace = 2 * time.Second
)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// ValidateName reports whether name can name a deployment: 1-63 letters,
// digits, '.', '_' or '-', starting with a letter or digit. The name is
// also a file name in the daemon's state directory.
func ValidateName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("name %q: want 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit", name)
	}
	return nil
}

// ValidatePool reports whether minPool and maxPool bound a pool: at
// least one process at most, and from 0 to that at least.
func ValidatePool(minPool, maxPool int) error {
	if maxPool < 1 {
		return fmt.Errorf("max pool must be at least 1, got %d", maxPool)
	}
	if minPool < 0 || minPool > maxPool {
		return fmt.Errorf("min pool must be from 0 to the max pool (%d), got %d", maxPool, minPool)
	}
	return nil
}

// WithDefaults returns s with zero fields set to their defaults.
func (s Spec) WithDefaults() Spec {
	if s.Group == "" {
		s.Group = s.Name
	}
	if s.DeadLetter == "" && s.Topic != "" {
		s.DeadLetter = s.Topic + ".dlq"
	}
	if s.MaxPool == 0 {
		if s.Pool == 0 {
			s.Pool = DefaultPool
		}
		s.MinPool, s.MaxPool = s.Pool, s.Pool
	}
	if s.ScaleDownAfter == 0 {
		s.ScaleDownAfter = Duration(DefaultScaleDownAfter)
	}
	if s.Timeout == 0 {
		s.Timeout = Duration(DefaultTimeout)
	}
	if s.MaxAttempts == 0 {
		s.MaxAttempts = DefaultMaxAttempts
	}
	if s.Order == "" {
		s.Order = OrderKey
	}
	return s
}

// Validate reports every problem with a spec (after WithDefaults).
func (s Spec) Validate() error {
	var errs []string
	if err := ValidateName(s.Name); err != nil {
		errs = append(errs, err.Error())
	}
	if s.Binary == "" {
		errs = append(errs, "no binary")
	}
	if s.Topic == "" {
		errs = append(errs, "no topic")
	}
	switch {
	case s.Pool < 0 || (s.Pool == 0 && s.MaxPool == 0):
		errs = append(errs, fmt.Sprintf("pool must be at least 1, got %d", s.Pool))
	case s.Pool > 0 && (s.MinPool != s.Pool || s.MaxPool != s.Pool):
		errs = append(errs, fmt.Sprintf("pool %d conflicts with min pool %d and max pool %d: give one or the other", s.Pool, s.MinPool, s.MaxPool))
	default:
		if err := ValidatePool(s.MinPool, s.MaxPool); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if s.ScaleDownAfter < 0 {
		errs = append(errs, fmt.Sprintf("scale-down period must not be negative, got %v", time.Duration(s.ScaleDownAfter)))
	}
	if s.Timeout <= 0 {
		errs = append(errs, fmt.Sprintf("timeout must be positive, got %v", time.Duration(s.Timeout)))
	}
	if s.MaxAttempts < 1 {
		errs = append(errs, fmt.Sprintf("attempts must be at least 1, got %d", s.MaxAttempts))
	}
	switch s.Order {
	case OrderKey, OrderPartition, OrderNone:
	default:
		errs = append(errs, fmt.Sprintf("order must be key, partition or none, got %q", s.Order))
	}
	if s.DeadLetter == s.Topic {
		errs = append(errs, "the dead-letter topic must differ from the topic")
	}
	if s.MemoryLimit < 0 {
		errs = append(errs, "memory limit must not be negative")
	}
	for _, kv := range s.Env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			errs = append(errs, fmt.Sprintf("env %q: want K=V", kv))
		} else if k == kconn.EnvSASLPassword {
			// A spec is stored and shown by the API.
			errs = append(errs, fmt.Sprintf("env %s: a password is not kept with a deployment; give the function the daemon's connection with kafka_env (fnctl deploy --kafka-env)", k))
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// Duration is a time.Duration that reads and writes JSON as "5s".
type Duration time.Duration

// MarshalJSON writes the duration as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Duration(d).String() + `"`), nil
}

// UnmarshalJSON reads a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %s: %w", b, err)
	}
	*d = Duration(v)
	return nil
}
