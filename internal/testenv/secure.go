package testenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// EnvRequireKafka, set to 1 (CI sets it), makes a test that needs Apache
// Kafka fail rather than skip when Java or Maven are missing.
const EnvRequireKafka = "FN_REQUIRE_KAFKA"

// User is a SASL user of the secured Kafka.
type User struct {
	Mechanism    string
	Name         string
	Password     string
	PasswordFile string // holds Password
}

// Secured is an Apache Kafka with a second listener, SASL_SSL, whose
// certificate a CA made by the test signed, and a user per SASL mechanism.
type Secured struct {
	Plaintext string // the PLAINTEXT listener's address
	Addr      string // the SASL_SSL listener's address
	CAFile    string // PEM of the CA that signed the broker's certificate
	// OtherCAFile is a CA that signed nothing the broker has: trusting
	// only it, a client refuses the broker's certificate.
	OtherCAFile string
	Users       map[string]User // by mechanism
	Dir         string          // Kafka's directory (kafka.log, ...)
}

var (
	secureOnce sync.Once
	secured    *Secured
	secureErr  error
	secureStop func()
)

// SecureKafka starts, once per test binary, Apache Kafka (tests/kafka/kafka.sh)
// with a SASL_SSL listener; CleanupSecure stops it. It skips the test when
// Java or Maven are missing, unless FN_REQUIRE_KAFKA=1, and in the passes
// on another broker (FN_TEST_BROKERS, FN_TEST_DOCKER), so that it runs once.
func SecureKafka(t testing.TB) *Secured {
	t.Helper()
	if k := Selected(); k != KindEmbedded {
		t.Skipf("starts its own Apache Kafka with a SASL_SSL listener: runs in the embedded pass (go test without FN_TEST_BROKERS), not this %s one", k)
	}
	for _, tool := range []string{"java", "mvn"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv(EnvRequireKafka) == "1" {
				t.Fatalf("%s not found, and %s=1: the secured-Kafka tests must run", tool, EnvRequireKafka)
			}
			t.Skipf("%s not found: the secured-Kafka tests need Apache Kafka (a JDK and Maven); set %s=1 to fail instead", tool, EnvRequireKafka)
		}
	}
	secureOnce.Do(func() { secured, secureStop, secureErr = startSecure() })
	if secureErr != nil {
		t.Fatalf("start Apache Kafka with a SASL_SSL listener: %v", secureErr)
	}
	return secured
}

func startSecure() (*Secured, func(), error) {
	dir, err := os.MkdirTemp("", "microfn-secure-kafka-")
	if err != nil {
		return nil, nil, err
	}
	s := &Secured{Dir: filepath.Join(dir, "kafka"), Users: map[string]User{}}
	certs := filepath.Join(dir, "certs")
	if err := os.MkdirAll(certs, 0o700); err != nil {
		return nil, nil, err
	}
	files, err := WriteCerts(certs)
	if err != nil {
		return nil, nil, err
	}
	serverPEM := files.Server
	s.CAFile, s.OtherCAFile = files.CA, files.OtherCA
	args := []string{"start", s.Dir, "--sasl-ssl", serverPEM}
	var plainUsers []string
	for i, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		u := User{Mechanism: mech, Name: fmt.Sprintf("fnuser%d", i), Password: "pw-" + randomHex(12)}
		u.PasswordFile = filepath.Join(certs, strings.ToLower(mech)+".password")
		if err := os.WriteFile(u.PasswordFile, []byte(u.Password+"\n"), 0o600); err != nil {
			return nil, nil, err
		}
		s.Users[mech] = u
		if mech == "PLAIN" {
			plainUsers = append(plainUsers, fmt.Sprintf("user_%s=%q", u.Name, u.Password))
			continue
		}
		args = append(args, "--add-scram", fmt.Sprintf("%s=[name=%s,password=%s]", mech, u.Name, u.Password))
	}
	args = append(args, "listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required "+
		strings.Join(plainUsers, " ")+";")
	script := filepath.Join(kafkaDir(), "kafka.sh")
	stop := func() {
		_ = exec.Command(script, "stop", s.Dir).Run()
		os.RemoveAll(dir)
	}
	out, err := exec.Command(script, args...).CombinedOutput()
	if err != nil {
		stop()
		return nil, nil, fmt.Errorf("kafka.sh start: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	s.Plaintext = lines[len(lines)-1]
	b, err := os.ReadFile(filepath.Join(s.Dir, "bootstrap-sasl-ssl"))
	if err != nil {
		stop()
		return nil, nil, err
	}
	s.Addr = strings.TrimSpace(string(b))
	return s, stop, nil
}

// CleanupSecure stops the secured Kafka if one was started.
func CleanupSecure() {
	if secureStop != nil {
		secureStop()
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// CertFiles are the PEM files WriteCerts makes.
type CertFiles struct {
	Server  string // the broker's key, certificate and the CA's, as Kafka's PEM keystore wants
	CA      string // the CA that signed Server
	OtherCA string // a CA that signed nothing
}

// WriteCerts makes, in dir, a CA, a broker certificate it signs for
// 127.0.0.1 and localhost, and a second CA that signs nothing.
func WriteCerts(dir string) (CertFiles, error) {
	f := CertFiles{Server: filepath.Join(dir, "server.pem"), CA: filepath.Join(dir, "ca.pem"), OtherCA: filepath.Join(dir, "other-ca.pem")}
	return f, writeCerts(f.Server, f.CA, f.OtherCA)
}

func writeCerts(serverPEM, caFile, otherCAFile string) error {
	ca, caKey, caDER, err := newCA("microfn test CA")
	if err != nil {
		return err
	}
	_, _, otherDER, err := newCA("microfn other CA")
	if err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	server := append(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	server = append(server, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})...)
	for path, b := range map[string][]byte{
		serverPEM:   server,
		caFile:      pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		otherCAFile: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: otherDER}),
	} {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

func newCA(name string) (*x509.Certificate, *ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, der, err
}
