// Command orders is a chain of two functions in one binary: bill turns an
// order (topic "orders") into an invoice ("invoices"), and notify turns an
// invoice into a notification ("notifications"). Deploy each subscriber
// with --subscriber.
//
// bill refuses orders over its billing limit (BILLING_LIMIT, default 1000)
// for good: they go to the dead-letter topic "orders.dlq". Raise the limit
// and `fnctl replay bill` sends them through again. See README.md.
package main

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/microfn/microfn/fn"
)

// Order is the payload on "orders".
type Order struct {
	ID       string `json:"id"`
	Customer string `json:"customer"`
	Total    int    `json:"total"`
}

// Invoice is the payload on "invoices".
type Invoice struct {
	OrderID  string `json:"order_id"`
	Customer string `json:"customer"`
	Amount   int    `json:"amount"`
}

// Notification is the payload on "notifications".
type Notification struct {
	Customer string `json:"customer"`
	Text     string `json:"text"`
}

func bill(ctx context.Context, o Order) error {
	limit, err := strconv.Atoi(cmp.Or(os.Getenv("BILLING_LIMIT"), "1000"))
	if err != nil {
		return fmt.Errorf("BILLING_LIMIT: %w", err) // a failed attempt: fix the deployment, it is retried
	}
	if o.Total > limit {
		return fn.Permanent(fmt.Errorf("order %s: total %d is over the billing limit %d", o.ID, o.Total, limit))
	}
	return fn.Emit(ctx, "invoices", Invoice{OrderID: o.ID, Customer: o.Customer, Amount: o.Total}, fn.WithKey(o.Customer))
}

func notify(ctx context.Context, inv Invoice) error {
	text := fmt.Sprintf("invoice for order %s: %d", inv.OrderID, inv.Amount)
	return fn.Emit(ctx, "notifications", Notification{Customer: inv.Customer, Text: text}, fn.WithKey(inv.Customer))
}

func main() {
	fn.Subscribe("bill", "orders", bill, fn.Timeout(5*time.Second), fn.MaxAttempts(3))
	fn.Subscribe("notify", "invoices", notify, fn.Timeout(5*time.Second))
	fn.Main()
}
