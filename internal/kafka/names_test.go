package kafka

import (
	"strings"
	"testing"
)

func TestValidateTopic(t *testing.T) {
	for _, ok := range []string{"names", "names.dlq", "a_b-c.9", "...", strings.Repeat("t", 249)} {
		if err := ValidateTopic(ok); err != nil {
			t.Errorf("ValidateTopic(%q): %v", ok, err)
		}
	}
	for name, want := range map[string]string{
		"":                       "empty topic name",
		".":                      `topic ".": want`,
		"..":                     `topic "..": want`,
		"a b":                    `topic "a b": want`,
		"a/b":                    `topic "a/b": want`,
		"é":                      `topic "é": want`,
		strings.Repeat("t", 250): "want 1-249 letters",
	} {
		if err := ValidateTopic(name); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ValidateTopic(%.20q): %v, want %q", name, err, want)
		}
	}
}

func TestValidateGroup(t *testing.T) {
	for _, ok := range []string{"greeter", "team/greeter:v2", "é"} {
		if err := ValidateGroup(ok); err != nil {
			t.Errorf("ValidateGroup(%q): %v", ok, err)
		}
	}
	for name, want := range map[string]string{
		"":                       "empty consumer group name",
		"a b":                    `consumer group "a b": want`,
		"a\tb":                   `consumer group "a\tb": want`,
		"a\x00":                  `consumer group "a\x00": want`,
		strings.Repeat("g", 250): "want 1-249 printable",
	} {
		if err := ValidateGroup(name); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ValidateGroup(%.20q): %v, want %q", name, err, want)
		}
	}
}
