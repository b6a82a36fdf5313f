package kafka_test

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/microfn/microfn/internal/kafka"
	"github.com/microfn/microfn/internal/kconn"
	"github.com/microfn/microfn/internal/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.Cleanup()
	testenv.CleanupSecure()
	os.Exit(code)
}

// target is a secured listener and how to reach it.
type target struct {
	addr      string // SASL_SSL (or TLS+SASL) listener
	plaintext string // a plaintext listener of the same cluster, "" if none
	ca, other string
	users     map[string]testenv.User
}

// roundTrip produces a record and reads it back with a client set up from
// settings.
func roundTrip(t *testing.T, addr string, s kconn.Settings) {
	t.Helper()
	conn, err := kafka.Load(s, func(string) string { return "" }, nil)
	if err != nil {
		t.Fatal(err)
	}
	client, err := conn.NewClient([]string{addr}, conn.Config("test"))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	topic := fmt.Sprintf("secure-%d", time.Now().UnixNano())
	if err := kafka.NewTopics(client, nil).Ensure(topic); err != nil {
		t.Fatal(err)
	}
	p, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	part, off, err := p.SendMessage(kafka.ProducerMessage(topic, []byte("k"), []byte("v"), nil))
	if err != nil {
		t.Fatal(err)
	}
	c, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pc, err := c.ConsumePartition(topic, part, off)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	select {
	case m := <-pc.Messages():
		if string(m.Value) != "v" {
			t.Fatalf("read %q, want v", m.Value)
		}
	case err := <-pc.Errors():
		t.Fatal(err)
	case <-time.After(30 * time.Second):
		t.Fatal("the record did not come back within 30s")
	}
}

// failsWith connects with settings and wants one line containing want.
func failsWith(t *testing.T, addr string, s kconn.Settings, password, want string) {
	t.Helper()
	getenv := func(k string) string {
		if k == kconn.EnvSASLPassword {
			return password
		}
		return ""
	}
	conn, err := kafka.Load(s, getenv, nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	client, err := conn.NewClient([]string{addr}, conn.Config("test"))
	took := time.Since(start)
	if err == nil {
		client.Close()
		t.Fatalf("connected; want a failure saying %q", want)
	}
	msg := err.Error()
	if !strings.Contains(msg, want) || strings.Contains(msg, "\n") || !errors.Is(err, kafka.ErrUnreachable) {
		t.Fatalf("error %q: want one line containing %q", msg, want)
	}
	if password != "" && strings.Contains(msg, password) {
		t.Fatalf("the error shows the password: %q", msg)
	}
	t.Logf("after %v: %s", took.Round(time.Millisecond), msg)
}

func testSecured(t *testing.T, tg target) {
	for _, mech := range kconn.Mechanisms {
		u, ok := tg.users[mech]
		if !ok {
			continue
		}
		ok2 := kconn.Settings{CAFile: tg.ca, SASLMechanism: mech, SASLUser: u.Name, SASLPasswordFile: u.PasswordFile}
		t.Run(mech, func(t *testing.T) { roundTrip(t, tg.addr, ok2.Merge(kconn.Settings{})) })
		t.Run(mech+"/wrong-password", func(t *testing.T) {
			bad := ok2
			bad.SASLPasswordFile = ""
			failsWith(t, tg.addr, bad.Merge(kconn.Settings{}), "Wrong-"+u.Password, "wrong user name or password")
		})
	}
	var any testenv.User
	for _, u := range tg.users {
		any = u
	}
	good := kconn.Settings{CAFile: tg.ca, SASLMechanism: any.Mechanism, SASLUser: any.Name, SASLPasswordFile: any.PasswordFile}.Merge(kconn.Settings{})
	t.Run("untrusted-certificate", func(t *testing.T) {
		s := good
		s.CAFile = tg.other
		failsWith(t, tg.addr, s, "", "not signed by a trusted CA")
	})
	t.Run("wrong-server-name", func(t *testing.T) {
		s := good
		s.ServerName = "kafka.example.com"
		failsWith(t, tg.addr, s, "", "not valid for \"kafka.example.com\"")
	})
	t.Run("plaintext-client-tls-listener", func(t *testing.T) {
		failsWith(t, tg.addr, kconn.Settings{}, "", "the listener may expect TLS")
	})
	if tg.plaintext != "" {
		t.Run("tls-client-plaintext-listener", func(t *testing.T) {
			failsWith(t, tg.plaintext, good, "", "the listener does not speak TLS")
		})
	}
	t.Run("insecure-skip-verify", func(t *testing.T) {
		s := good
		s.CAFile = tg.other
		s.InsecureSkipVerify = true
		roundTrip(t, tg.addr, s)
	})
}

// TestSecuredRealKafka runs against Apache Kafka's SASL_SSL listener.
func TestSecuredRealKafka(t *testing.T) {
	k := testenv.SecureKafka(t)
	testSecured(t, target{addr: k.Addr, plaintext: k.Plaintext, ca: k.CAFile, other: k.OtherCAFile, users: k.Users})
}

// TestSecuredKfake runs against the embedded broker's engine, kfake, with
// TLS and SASL on.
func TestSecuredKfake(t *testing.T) {
	dir := t.TempDir()
	files, err := testenv.WriteCerts(dir)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(files.Server, files.Server)
	if err != nil {
		t.Fatal(err)
	}
	users := map[string]testenv.User{}
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.EnableSASL(),
		kfake.TLS(&tls.Config{Certificates: []tls.Certificate{cert}})}
	for i, mech := range kconn.Mechanisms {
		u := testenv.User{Mechanism: mech, Name: fmt.Sprintf("u%d", i), Password: fmt.Sprintf("secret-%d-%d", i, time.Now().UnixNano())}
		u.PasswordFile = filepath.Join(dir, fmt.Sprintf("pw%d", i))
		if err := os.WriteFile(u.PasswordFile, []byte(u.Password), 0o600); err != nil {
			t.Fatal(err)
		}
		users[mech] = u
		opts = append(opts, kfake.Superuser(mech, u.Name, u.Password))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	plain, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	testSecured(t, target{addr: c.ListenAddrs()[0], plaintext: plain.ListenAddrs()[0], ca: files.CA, other: files.OtherCA, users: users})
}

// TestNotKafka: a peer that accepts connections but is not Kafka (silent,
// or answering something else) fails at the first attempt, in one line,
// not after sarama's read timeout and retries.
func TestNotKafka(t *testing.T) {
	for name, answer := range map[string][]byte{"silent": nil, "http": []byte("HTTP/1.0 400 Bad Request\r\n\r\n")} {
		t.Run(name, func(t *testing.T) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			go func() {
				for {
					c, err := l.Accept()
					if err != nil {
						return
					}
					defer c.Close()
					if answer != nil {
						c.Write(answer)
					}
				}
			}()
			var conn *kafka.Conn
			cfg := conn.Config("test")
			cfg.Net.DialTimeout = 500 * time.Millisecond
			_, err = conn.NewClient([]string{l.Addr().String()}, cfg)
			if err == nil || !strings.Contains(err.Error(), "does not speak the Kafka protocol") || strings.Contains(err.Error(), "\n") {
				t.Fatalf("got %v, want one line saying the peer is not Kafka", err)
			}
			t.Log(err)
		})
	}
}
