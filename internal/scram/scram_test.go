package scram

import "testing"

// TestRFC7677 replays the SCRAM-SHA-256 exchange of RFC 7677, section 3.
func TestRFC7677(t *testing.T) {
	s := SHA256("user", "pencil").Start()
	nonce = func() string { return "rOprNGfwEbeRWgbNEkqO" }
	defer func() { nonce = randomNonce }()
	first, done, err := s.Step(nil)
	if err != nil || done || string(first) != "n,,n=user,r=rOprNGfwEbeRWgbNEkqO" {
		t.Fatalf("client-first %q %v %v", first, done, err)
	}
	final, done, err := s.Step([]byte("r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"))
	want := "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
	if err != nil || done || string(final) != want {
		t.Fatalf("client-final %q %v %v, want %q", final, done, err, want)
	}
	msg, done, err := s.Step([]byte("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="))
	if err != nil || !done || msg != nil {
		t.Fatalf("server-final: %q %v %v", msg, done, err)
	}

	s = SHA256("user", "pencil").Start()
	s.Step(nil)
	s.Step([]byte("r=" + s.clientNonce + "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"))
	if _, _, err := s.Step([]byte("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")); err == nil {
		t.Fatal("a server signature for another exchange was accepted")
	}
}
