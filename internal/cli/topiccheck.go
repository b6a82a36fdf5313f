package cli

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/IBM/sarama"

	"github.com/microfn/microfn/internal/daemon"
	"github.com/microfn/microfn/internal/kafka"
	"github.com/microfn/microfn/internal/kconn"
)

// warnIfTopicMissing writes a warning to w when topic does not exist on
// the daemon's Kafka: a deployment on a missing topic consumes nothing,
// and a Kafka with auto.create.topics.enable=false never creates it. The
// embedded broker creates topics on first use; a Kafka this machine cannot
// reach (the daemon may see other addresses) is not checked.
func warnIfTopicMissing(ctx context.Context, w io.Writer, c *daemon.Client, settings kconn.Settings, topic string) {
	ov, err := c.Status(ctx)
	if err != nil || ov.Broker.Kind != "external" || !ov.Broker.Reachable {
		return
	}
	conn, err := kafkaConn(settings, nil)
	if err != nil {
		return
	}
	cfg := conn.Config("fnctl")
	cfg.Net.DialTimeout = 2 * time.Second
	cfg.Metadata.Retry.Max = 0
	client, err := sarama.NewClient(ov.Broker.Addrs, cfg)
	if err != nil {
		return
	}
	defer client.Close()
	if ok, err := kafka.TopicExists(client, topic); err != nil || ok {
		return
	}
	addrs := strings.Join(ov.Broker.Addrs, ",")
	switch autoCreate(client) {
	case "false":
		fmt.Fprintf(w, "fnctl: warning: topic %q does not exist and Kafka at %s does not create topics (auto.create.topics.enable=false): the deployment consumes nothing until it is created\n", topic, addrs)
	case "true":
		fmt.Fprintf(w, "fnctl: warning: topic %q does not exist: Kafka at %s creates it with its default partition count (num.partitions) when the deployment subscribes\n", topic, addrs)
	default:
		fmt.Fprintf(w, "fnctl: warning: topic %q does not exist on Kafka at %s: the deployment consumes nothing until it is created\n", topic, addrs)
	}
}

// autoCreate is the auto.create.topics.enable setting of a broker of
// client's cluster, "" when it cannot be read.
func autoCreate(client sarama.Client) string {
	b, err := client.Controller()
	if err != nil {
		return ""
	}
	req := &sarama.DescribeConfigsRequest{Version: 1, Resources: []*sarama.ConfigResource{{
		Type: sarama.BrokerResource, Name: strconv.Itoa(int(b.ID())), ConfigNames: []string{"auto.create.topics.enable"}}}}
	resp, err := b.DescribeConfigs(req)
	if err != nil || len(resp.Resources) != 1 || resp.Resources[0].ErrorCode != 0 {
		return ""
	}
	for _, c := range resp.Resources[0].Configs {
		if c.Name == "auto.create.topics.enable" {
			return c.Value
		}
	}
	return ""
}
