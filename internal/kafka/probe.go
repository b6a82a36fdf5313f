package kafka

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/IBM/sarama"

	"github.com/microfn/microfn/internal/ktls"
)

// errNotKafka is a peer that accepted a connection but did not answer as
// a Kafka broker.
var errNotKafka = errors.New("not a Kafka listener")

// probe asks each seed broker, in turn, for its API versions on a
// connection of its own (TLS included, SASL not needed for that request),
// with cfg's dial timeout bounding the whole exchange, and returns nil at
// the first that answers as Kafka. sarama would wait its read timeout
// (30 s) for an answer, and retry: a peer that is not Kafka, or a TLS
// listener that a plaintext client reached, took minutes to fail.
func (c *Conn) probe(brokers []string, cfg *sarama.Config) error {
	var first error
	for _, addr := range brokers {
		err := c.probeOne(addr, cfg.Net.DialTimeout)
		if err == nil {
			return nil
		}
		if first == nil {
			first = err
		}
	}
	return first
}

func (c *Conn) probeOne(addr string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	if c != nil && c.TLS != nil {
		tc, err := ktls.Client(ctx, conn, addr, c.TLS)
		if err != nil {
			return err
		}
		conn = tc
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	if err := conn.SetDeadline(deadline); err != nil {
		return err
	}
	// ApiVersions v0: size, api key 18, version 0, correlation id, client id.
	const correlation = 0x6d66 // "mf"
	clientID := "microfn-probe"
	req := binary.BigEndian.AppendUint32(nil, uint32(2+2+4+2+len(clientID)))
	req = binary.BigEndian.AppendUint16(req, 18)
	req = binary.BigEndian.AppendUint16(req, 0)
	req = binary.BigEndian.AppendUint32(req, correlation)
	req = binary.BigEndian.AppendUint16(req, uint16(len(clientID)))
	req = append(req, clientID...)
	if _, err := conn.Write(req); err != nil {
		return err
	}
	var head [8]byte
	if _, err := io.ReadFull(conn, head[:]); err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return fmt.Errorf("%w: %s accepted the connection but did not answer within %v", errNotKafka, addr, timeout)
		}
		return err
	}
	size, id := binary.BigEndian.Uint32(head[:4]), binary.BigEndian.Uint32(head[4:])
	if size < 4 || size > 1<<20 || id != correlation {
		return fmt.Errorf("%w: %s answered with something else (%q)", errNotKafka, addr, head[:])
	}
	return nil
}
