package kafka

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"
)

// maxNameLen is Kafka's limit on a topic name, applied to groups too.
const maxNameLen = 249

var topicRE = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// ValidateTopic reports whether Kafka accepts name as a topic: 1-249
// letters, digits, '.', '_' or '-', and neither "." nor "..". Checking
// first turns the broker's bare "invalid topic" into a message that says
// what is wrong.
func ValidateTopic(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("empty topic name")
	case len(name) > maxNameLen || !topicRE.MatchString(name) || name == "." || name == "..":
		return fmt.Errorf("topic %q: want 1-%d letters, digits, '.', '_' or '-'", name, maxNameLen)
	}
	return nil
}

// ValidateGroup reports whether name can be a consumer group: Kafka takes
// any non-empty string, but microfn refuses spaces and control characters,
// which in a group name are almost always a quoting mistake.
func ValidateGroup(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("empty consumer group name")
	case len(name) > maxNameLen || strings.IndexFunc(name, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) >= 0:
		return fmt.Errorf("consumer group %q: want 1-%d printable characters without spaces", name, maxNameLen)
	}
	return nil
}
