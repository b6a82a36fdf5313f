package fntest_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/microfn/microfn/fn"
	"github.com/microfn/microfn/fn/fntest"
)

type Order struct {
	ID    string `json:"id"`
	Total int    `json:"total"`
}

type Invoice struct {
	OrderID string `json:"order_id"`
}

func bill(ctx context.Context, o Order) error {
	if o.Total < 0 {
		return fn.Permanent(errors.New("negative total"))
	}
	return fn.Emit(ctx, "invoices", Invoice{OrderID: o.ID}, fn.WithKey(o.ID))
}

func Example() {
	r := fntest.Run(bill, Order{ID: "o-1", Total: 12})
	inv, _ := fntest.Decode[Invoice](r.Events[0], nil)
	fmt.Println(r.Outcome, r.Events[0].Topic, string(r.Events[0].Key), inv.OrderID)

	r = fntest.Run(bill, Order{ID: "o-2", Total: -1})
	fmt.Println(r.Outcome, r.Failure, r.Err, len(r.Events))
	// Output:
	// ack invoices o-1 o-1
	// dead-letter permanent negative total 0
}
