// Command greeter is a microfn function: for each {"name": ...} message on
// the topic "names" it prints a greeting and emits it on "greetings".
//
// A message without a name can never succeed, so it is dead-lettered at
// once (to "names.dlq") instead of being retried.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/microfn/microfn/fn"
)

// Name is the payload on "names".
type Name struct {
	Name string `json:"name"`
}

// Greeting is the payload emitted on "greetings".
type Greeting struct {
	Text string `json:"text"`
	PID  int    `json:"pid"`
}

func greet(ctx context.Context, n Name) error {
	if n.Name == "" {
		return fn.Permanent(errors.New(`no "name" in the message`))
	}
	m := fn.MessageFrom(ctx)
	text := "hello, " + n.Name
	fmt.Printf("%s (pid %d, %s/%d@%d, attempt %d)\n", text, os.Getpid(), m.Topic, m.Partition, m.Offset, m.Attempt)
	return fn.Emit(ctx, "greetings", Greeting{Text: text, PID: os.Getpid()}, fn.WithKey(n.Name))
}

func main() {
	fn.Subscribe("greeter", "names", greet, fn.Timeout(5*time.Second), fn.MaxAttempts(3))
	fn.Main()
}
