package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"go.yaml.in/yaml/v3"
)

// addressSettings differ between the broker setups by nature (where each
// listens, how its controller quorum is found, where it keeps data), so
// they are not compared.
var addressSettings = map[string]bool{
	"listeners":                           true,
	"advertised.listeners":                true,
	"listener.security.protocol.map":      true,
	"controller.quorum.voters":            true,
	"controller.quorum.bootstrap.servers": true,
	"log.dirs":                            true,
}

// docker-compose.kafka.yml runs the Kafka release and the broker settings
// that the tests' Kafka (tests/kafka) runs with.
func TestBrokerSettingsAgree(t *testing.T) {
	want, err := BrokerSettings()
	if err != nil {
		t.Fatal(err)
	}
	version, err := KafkaVersion()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(kafkaDir(), "..", "..", "docker-compose.kafka.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			Image       string         `yaml:"image"`
			Environment map[string]any `yaml:"environment"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(b, &compose); err != nil {
		t.Fatalf("docker-compose.kafka.yml: %v", err)
	}
	svc, ok := compose.Services["kafka"]
	if !ok {
		t.Fatal("docker-compose.kafka.yml has no kafka service")
	}
	if img := "apache/kafka:" + version; svc.Image != img {
		t.Errorf("docker-compose.kafka.yml runs %s, tests/kafka/pom.xml pins Kafka %s: use %s", svc.Image, version, img)
	}
	got := map[string]string{}
	for env, v := range svc.Environment {
		key, ok := SettingName(env)
		if !ok {
			t.Errorf("docker-compose.kafka.yml: %s is not a KAFKA_ setting", env)
			continue
		}
		if !addressSettings[key] {
			got[key] = fmt.Sprint(v)
		}
	}
	for k, v := range want {
		if g, ok := got[k]; !ok {
			t.Errorf("docker-compose.kafka.yml lacks %s=%s (%s) of tests/kafka/server.properties", EnvName(k), v, k)
		} else if g != v {
			t.Errorf("%s: docker-compose.kafka.yml has %s, tests/kafka/server.properties %s", k, g, v)
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("docker-compose.kafka.yml sets %s=%s (%s), which tests/kafka/server.properties does not", EnvName(k), v, k)
		}
	}
}

func TestEnvNames(t *testing.T) {
	for key, env := range map[string]string{
		"offsets.topic.replication.factor": "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
		"a_b.c-d":                          "KAFKA_A__B_C___D",
	} {
		if got := EnvName(key); got != env {
			t.Errorf("EnvName(%q) = %q, want %q", key, got, env)
		}
		if got, ok := SettingName(env); !ok || got != key {
			t.Errorf("SettingName(%q) = %q, %v, want %q", env, got, ok, key)
		}
	}
}
