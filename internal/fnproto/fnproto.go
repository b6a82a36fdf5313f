// Package fnproto is what a function binary built with fn and the programs
// that run it agree on, besides the frames of package pipe: the manifest
// that --describe prints, the environment variables the binary reads, and
// its exit codes when it runs standalone. It imports only the standard
// library: function binaries link it.
package fnproto

// ProtocolVersion is the version of the restarter protocol that a
// manifest announces.
const ProtocolVersion = 1

// Manifest describes a function binary's subscribers; --describe prints
// it as JSON.
type Manifest struct {
	// Protocol is the restarter protocol version the binary speaks.
	Protocol    int          `json:"protocol"`
	Subscribers []Subscriber `json:"subscribers"`
}

// Subscriber describes one declared subscriber.
type Subscriber struct {
	Name        string `json:"name"`
	Topic       string `json:"topic"`
	Group       string `json:"group"`
	Codec       string `json:"codec"`
	Timeout     string `json:"timeout"`
	MaxAttempts int    `json:"max_attempts"`
	DeadLetter  string `json:"dead_letter"`
}

// Environment variables a function binary reads.
const (
	EnvDescribe   = "FN_DESCRIBE"   // "1": print the manifest and exit
	EnvSubscriber = "FN_SUBSCRIBER" // which subscriber to run, when it declares several
	EnvBrokers    = "FN_BROKERS"    // standalone: the Kafka bootstrap addresses

	// Overrides of the chosen subscriber's declared settings.
	EnvTopic       = "FN_TOPIC"
	EnvGroup       = "FN_GROUP"
	EnvDeadLetter  = "FN_DEAD_LETTER"
	EnvMaxAttempts = "FN_MAX_ATTEMPTS"
	EnvTimeout     = "FN_TIMEOUT" // a Go duration, e.g. 5s
)

// Exit codes of a function binary.
const (
	// ExitOK: the message was handled and committed (acknowledged or
	// dead-lettered); also the exit code of --describe and of a process
	// the restarter did not need.
	ExitOK = 0
	// ExitRetry: the attempt failed; the offset was not advanced and the
	// attempt was recorded, so the next run gets the message again.
	ExitRetry = 1
	// ExitUsage: bad flags, environment or subscriber declarations.
	ExitUsage = 2
	// ExitBroker: the broker was unreachable or refused an operation
	// (commit, dead letter, event publish); nothing was committed, so the
	// message, if one was taken, is delivered again.
	ExitBroker = 3
	// ExitInterrupted: a signal stopped the binary before it took a
	// message; nothing was consumed.
	ExitInterrupted = 4
)
