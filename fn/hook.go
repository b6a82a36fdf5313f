package fn

import (
	"context"

	"github.com/microfn/microfn/internal/delivery"
	"github.com/microfn/microfn/internal/fnhook"
)

func init() {
	fnhook.Describe = func(f any) fnhook.Subscriber {
		g := f.(*Func)
		return fnhook.Subscriber{Name: g.name, Topic: g.topic, Codec: g.payloadCodec(),
			MaxAttempts: g.spec.maxAttempts, DeadLetter: g.spec.deadLetter, Err: g.Err()}
	}
	fnhook.Invoke = func(ctx context.Context, f, m any) delivery.Result {
		return f.(*Func).invoke(ctx, m.(*Message))
	}
}
