package testenv

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
)

// kafkaDir is tests/kafka of this module's source tree: the pom that pins
// the tests' Apache Kafka and the broker settings it runs with.
func kafkaDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "tests", "kafka")
}

// BrokerSettings reads tests/kafka/server.properties: the settings every
// real Kafka of the tests runs with (kafka.sh, docker-compose.kafka.yml,
// FN_TEST_DOCKER), the addresses aside.
func BrokerSettings() (map[string]string, error) {
	return readProperties(filepath.Join(kafkaDir(), "server.properties"))
}

func readProperties(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("%s:%d: want key=value, got %q", path, n, line)
		}
		out[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return out, sc.Err()
}

var kafkaVersionRE = regexp.MustCompile(`<kafka\.version>([^<]+)</kafka\.version>`)

// KafkaVersion is the Apache Kafka release tests/kafka/pom.xml pins.
func KafkaVersion() (string, error) {
	b, err := os.ReadFile(filepath.Join(kafkaDir(), "pom.xml"))
	if err != nil {
		return "", err
	}
	m := kafkaVersionRE.FindSubmatch(b)
	if m == nil {
		return "", fmt.Errorf("tests/kafka/pom.xml sets no <kafka.version>")
	}
	return string(m[1]), nil
}

// EnvName is the apache/kafka image's environment variable for a broker
// setting: KAFKA_ and the key in upper case with '.' as '_', '_' as '__'
// and '-' as '___'.
func EnvName(key string) string {
	r := strings.NewReplacer("-", "___", "_", "__", ".", "_")
	return "KAFKA_" + strings.ToUpper(r.Replace(key))
}

// SettingName is the broker setting of an apache/kafka image variable,
// the inverse of EnvName; ok is false for a variable that is not one.
func SettingName(env string) (key string, ok bool) {
	s, ok := strings.CutPrefix(env, "KAFKA_")
	if !ok {
		return "", false
	}
	s = strings.ToLower(s)
	s = strings.ReplaceAll(s, "___", "-")
	s = strings.ReplaceAll(s, "__", "\x00")
	s = strings.ReplaceAll(s, "_", ".")
	return strings.ReplaceAll(s, "\x00", "_"), true
}
