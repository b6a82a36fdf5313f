// Package fn is what a microfn function imports. A function is a small
// program that subscribes to a topic: it declares its subscribers and
// hands control to Main, which runs one message through a handler and
// exits.
//
//	func main() {
//		fn.Subscribe("bill-order", "orders", func(ctx context.Context, o Order) error {
//			return fn.Emit(ctx, "invoices", Invoice{OrderID: o.ID}, fn.WithKey(o.ID))
//		}, fn.Timeout(5*time.Second), fn.MaxAttempts(5))
//		fn.Main()
//	}
//
// The payload is decoded into the handler's type by the subscriber's
// codec (JSON by default; a []byte payload gets the raw value).
// MessageFrom gives the record behind it: key, headers, partition, offset,
// attempt.
//
// # What becomes of a message
//
// A handler returning nil acknowledges its message: the events it passed
// to Emit are published, then the message is committed. A non-nil error,
// a panic or a timeout is a failed attempt: the message is tried again
// after a backoff (200ms, doubling, at most 30s, jittered) until it has had
// MaxAttempts attempts, then it goes to the dead-letter topic. An error
// wrapped with Permanent, or a payload the codec cannot decode, goes to
// the dead-letter topic at once. A failed attempt emits nothing. If the
// broker does not take a successful handler's events at once, they are
// published again, not the handler run again; a message lost before its
// events are stored (the process stops or crashes) is delivered again.
// Delivery is at least once.
//
// # Ways to run
//
// The same handlers run four ways:
//
//   - under the restarter (`fnctl up`), which keeps processes of the
//     binary started ahead of time, each waiting for its one message;
//   - standalone: Main joins the subscriber's consumer group, takes one
//     message, handles it, commits and exits, so any process manager can
//     keep the binary running (see Main for the exit codes);
//   - embedded in a long-running service with Serve;
//   - in tests, with package fntest and no broker.
//
// `fnctl deploy` reads a binary's subscribers from its --describe output,
// so a function's topic is declared in its code only.
package fn
