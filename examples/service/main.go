// Command service is a long-running HTTP service that embeds microfn: each
// POST /orders publishes an "orders" event, and the same process hosts the
// function that handles those events with fn.Serve — the retries, dead
// letters and emitted events of a function under the restarter, without a
// process per message.
//
//	go run ./examples/service
//	curl -s -X POST localhost:8080/orders -d '{"id":"o-1","total":12}'
//	curl -s localhost:8080/orders/o-1
//
// By default it runs the embedded Kafka-protocol broker in-process on a free
// port; --broker kafka://HOST:9092 uses a real Kafka.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/microfn/microfn/broker"
	"github.com/microfn/microfn/fn"
)

// Order is the payload of an "orders" event.
type Order struct {
	ID    string `json:"id"`
	Total int    `json:"total"`
}

// Confirmation is what the hosted function emits on "confirmations".
type Confirmation struct {
	OrderID string `json:"order_id"`
}

// store is what the service knows of each order.
type store struct {
	mu     sync.Mutex
	status map[string]string
}

func (s *store) set(id, status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status[id] = status
}

func (s *store) get(id string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.status[id]
	return st, ok
}

// confirm is the function the service hosts: it confirms an order and
// emits its confirmation. A negative total can never be confirmed: the
// event is dead-lettered at once (orders.dlq).
func (s *store) confirm(ctx context.Context, o Order) error {
	if o.Total < 0 {
		s.set(o.ID, "rejected")
		return fn.Permanent(fmt.Errorf("order %s: negative total %d", o.ID, o.Total))
	}
	s.set(o.ID, "confirmed")
	return fn.Emit(ctx, "confirmations", Confirmation{OrderID: o.ID}, fn.WithKey(o.ID))
}

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "HTTP address")
	brokerURL := flag.String("broker", "embedded://127.0.0.1:0", "broker URL: embedded://HOST:PORT or kafka://HOST:PORT,...")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *listen, *brokerURL); err != nil {
		fmt.Fprintln(os.Stderr, "service:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, listen, brokerURL string) error {
	b, err := broker.Open(ctx, brokerURL)
	if err != nil {
		return err
	}
	defer b.Close()
	s := &store{status: map[string]string{}}
	confirm := fn.New("confirm", "orders", s.confirm, fn.MaxAttempts(3), fn.Timeout(5*time.Second))

	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: s.routes(b), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Printf("listening on %s\n", ln.Addr())

	// The function runs until ctx ends, then in-flight invocations finish.
	err = fn.Serve(ctx, b, fn.ServeFuncs(confirm), fn.ServeLogger(slog.Default()))
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return errors.Join(err, srv.Shutdown(shutdown))
}

func (s *store) routes(b broker.Broker) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /orders", func(w http.ResponseWriter, r *http.Request) {
		var o Order
		if err := json.NewDecoder(r.Body).Decode(&o); err != nil || o.ID == "" {
			http.Error(w, `want {"id": "...", "total": N}`, http.StatusBadRequest)
			return
		}
		payload, _ := json.Marshal(o)
		m := message.NewMessage("", payload)
		m.Metadata.Set(broker.MetadataKey, o.ID) // one key, one partition: an order's events stay in order
		m.Metadata.Set("content-type", "application/json")
		if err := b.Publish("orders", m); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		s.set(o.ID, "received")
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprintf(w, "{\"id\":%q,\"status\":\"received\"}\n", o.ID)
	})
	mux.HandleFunc("GET /orders/{id}", func(w http.ResponseWriter, r *http.Request) {
		st, ok := s.get(r.PathValue("id"))
		if !ok {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintf(w, "{\"id\":%q,\"status\":%q}\n", r.PathValue("id"), st)
	})
	return mux
}
