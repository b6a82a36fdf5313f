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
// port and prints its address; --broker HOST:PORT uses another, such as
// `fnctl broker` or a real Kafka. See README.md.
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

func (s *store) remove(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.status, id)
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
	brokerURL := flag.String("broker", "", "Kafka brokers HOST:PORT,... (default: an embedded broker in this process, on a free port)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *listen, *brokerURL); err != nil {
		fmt.Fprintln(os.Stderr, "service:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, listen, brokerURL string) error {
	if brokerURL == "" {
		e, err := broker.StartEmbedded(broker.EmbeddedConfig{Listen: "127.0.0.1:0"})
		if err != nil {
			return err
		}
		defer e.Close()
		fmt.Printf("embedded broker on %s\n", e.Addr())
		brokerURL = e.Addr()
	}
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
	httpDone := make(chan error, 1)
	go func() { httpDone <- srv.Serve(ln) }()
	fmt.Printf("listening on %s\n", ln.Addr())

	// The function runs until serving ends. At a signal the service first
	// stops taking requests, then lets the invocations in flight finish and
	// commit, so a restart handles no event twice.
	serving, stopServing := context.WithCancel(context.WithoutCancel(ctx))
	defer stopServing()
	served := make(chan error, 1)
	go func() { served <- fn.Serve(serving, b, fn.ServeFuncs(confirm), fn.ServeLogger(slog.Default())) }()
	var errServe, errHTTP error
	serveDone := false
	select {
	case errServe = <-served: // a subscriber failed
		serveDone = true
	case errHTTP = <-httpDone:
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if errHTTP == nil {
		errHTTP = srv.Shutdown(shutdown)
	}
	stopServing()
	if !serveDone {
		errServe = <-served
	}
	if err := errors.Join(errServe, errHTTP); err != nil {
		return err
	}
	fmt.Println("stopped")
	return nil
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
		// Recorded before the publish: the function can handle the event
		// before Publish returns, and its status must not be overwritten.
		prev, known := s.get(o.ID)
		s.set(o.ID, "received")
		if err := b.Publish("orders", m); err != nil {
			if known {
				s.set(o.ID, prev)
			} else {
				s.remove(o.ID)
			}
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
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
