// Package fn is what a microfn function imports: it declares subscribers,
// runs one message through a handler, emits follow-up events, and hosts
// the same handlers in a long-running service.
//
// A function binary declares its subscribers and hands control to Main:
//
//	func main() {
//		fn.Subscribe("bill-order", "orders", func(ctx context.Context, o Order) error {
//			return fn.Emit(ctx, "invoices", Invoice{OrderID: o.ID}, fn.WithKey(o.ID))
//		}, fn.Timeout(5*time.Second), fn.MaxAttempts(5))
//		fn.Main()
//	}
//
// # Semantics
//
// A handler returning nil acknowledges its message. A non-nil error is a
// failed attempt: the message is retried, with backoff, until it has had
// MaxAttempts attempts, then it goes to the dead-letter topic. An error
// wrapped with Permanent, or a payload the codec cannot decode, goes to
// the dead-letter topic at once. A panic and a timeout are failed attempts.
// Events passed to Emit are published only when the handler succeeds,
// before its message is committed, so a failed attempt emits nothing.
//
// Delivery is at least once: a message whose attempt was interrupted (a
// crash, a lost broker, a rebalance) is delivered again.
//
// # Ways to run
//
// Main runs the binary one of three ways, chosen by its environment:
//
//   - describe (--describe or FN_DESCRIBE=1): print the JSON manifest of
//     the declared subscribers and exit; `fnctl deploy` reads it.
//   - under the restarter (`fnctl up`), which sets FN_PIPE: take one
//     message from the restarter, report the outcome, exit.
//   - standalone, anywhere else: join the subscriber's consumer group on
//     the broker in FN_BROKERS (default 127.0.0.1:9092), take exactly one
//     message, handle it, commit, exit. See Main for the exit codes.
//
// Serve hosts the declared subscribers inside a long-running process.
//
// # Lean builds
//
// The standalone mode and Serve need a Kafka client, whose package
// initialisation would more than double a function process's start time.
// Built with -tags microfn_lean (as `fnctl deploy` builds functions), a
// binary leaves them out and runs only under the restarter and describe.
package fn
