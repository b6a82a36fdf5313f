package tests

import (
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/microfn/microfn/internal/kafka"
	"github.com/microfn/microfn/internal/testenv"
)

// uncreatable returns brokers that create no topic on first use and a
// topic name they refuse to create. On a real Kafka with
// auto.create.topics.enable=false (the real-Kafka pass), the name collides
// with an existing topic ('.' and '_' are the same to Kafka's metrics);
// on the embedded broker, a private one without auto-creation refuses to
// create it as a Kafka refuses a client without the CREATE permission.
func uncreatable(t *testing.T, env *testenv.Env, topic string) (brokers, name string) {
	t.Helper()
	if env.Embedded == nil {
		addrs, _ := kafka.ParseBrokers(env.Brokers)
		admin, err := sarama.NewClusterAdmin(addrs, testConfig())
		if err != nil {
			t.Fatal(err)
		}
		defer admin.Close()
		cfgs, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.BrokerResource, Name: "1",
			ConfigNames: []string{"auto.create.topics.enable"}})
		if err != nil || len(cfgs) != 1 || cfgs[0].Value != "false" {
			t.Skipf("needs a Kafka with auto.create.topics.enable=false (%v, %v): run the real-Kafka pass as the README says", cfgs, err)
		}
		createTopic(t, env.Brokers, topic+".x", 1)
		return env.Brokers, topic + "_x"
	}
	name = topic + "_x"
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.ListenFn(func(network, _ string) (net.Listener, error) {
		return net.Listen(network, "127.0.0.1:0")
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	c.ControlKey(int16(kmsg.CreateTopics), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := kreq.(*kmsg.CreateTopicsRequest)
		if !slices.ContainsFunc(req.Topics, func(rt kmsg.CreateTopicsRequestTopic) bool { return rt.Topic == name }) {
			return nil, nil, false
		}
		resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewCreateTopicsResponseTopic()
			st.Topic = rt.Topic
			st.ErrorCode = kerr.TopicAuthorizationFailed.Code
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	return c.ListenAddrs()[0], name
}

// A dead-letter topic that does not exist and cannot be created: the
// restarter says so once, clearly, keeps the message uncommitted and keeps
// trying.
func TestRestarterDeadLetterTopicCannotBeCreated(t *testing.T) {
	r := newRig(t)
	brokers, dlq := uncreatable(t, r.env, r.topic)
	if brokers != r.env.Brokers {
		r.env = &testenv.Env{Kind: r.env.Kind, Brokers: brokers}
		r.brokers = []string{brokers}
		createTopic(t, brokers, r.topic, rigPartitions)
	}
	e, logs := r.engineLogging()
	s := r.spec(1)
	s.MaxAttempts = 1
	s.DeadLetter = dlq
	produce(t, r.env.Brokers, r.topic, record{key: []byte("k"), value: []byte("fail id-poison")})
	r.deploy(e, s)
	logs.wait(t, "dead-letter publish failed; not committing", 3, settle)
	const once = "topic does not exist and cannot be created"
	if n := logs.count(once); n != 1 {
		t.Errorf("%d log lines say %q, want exactly 1", n, once)
	}
	for _, line := range logs.snapshot() {
		if strings.Contains(line, "dead-letter publish failed") && !strings.Contains(line, "topic "+dlq+" does not exist and cannot be created") {
			t.Errorf("the failed publish does not say why: %s", line)
			break
		}
	}
	rep := analyse(readLogAll(t, r.logPath))
	if len(rep.invs) != 1 {
		t.Fatalf("invocations: %s", rep)
	}
	if got := committed(t, r.brokers, s.Name, r.topic, rep.invs[0].partition); got > rep.invs[0].offset {
		t.Fatalf("committed %d past the message at %d, whose dead letter has nowhere to go", got, rep.invs[0].offset)
	}
}

// fnctl publish to a topic that does not exist and cannot be created
// fails with one line that says so.
func TestFnctlPublishTopicCannotBeCreated(t *testing.T) {
	env := testenv.Broker(t)
	brokers, name := uncreatable(t, env, testenv.Topic(t))
	fnctl := build(t, "cmd/fnctl")
	r := run(t, runTimeout, fnctl, []string{"FN_BROKERS=" + brokers}, "publish", name, "v")
	want := "topic " + name + " does not exist and cannot be created"
	if r.code != 1 || strings.Count(r.stderr, want) != 1 {
		t.Fatalf("exit %d, stderr %q: want exit 1 and once %q", r.code, r.stderr, want)
	}
}
