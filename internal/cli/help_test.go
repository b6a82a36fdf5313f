package cli

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// Every command's --help has an example.
func TestEveryCommandHasAnExample(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Example == "" {
			t.Errorf("%q has no example", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCmd(IO{}))
}

// fnctl --help documents the exit codes, the environment and completion;
// tail's says that it follows.
func TestHelpSaysWhatIsEasyToMiss(t *testing.T) {
	clearEnv(t)
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"--help"}, []string{exitCodesHelp, "FN_BROKERS", "FN_SERVER", "FN_TOKEN", "FN_STATE", "FN_SASL_PASSWORD_FILE", "Set, it makes 'fnctl up' run no embedded broker", "fnctl completion --help"}},
		{[]string{"tail", "--help"}, []string{"tail follows the topic:\nwithout -n or --idle it runs until interrupted"}},
		{[]string{"up", "--help"}, []string{"so FN_BROKERS exported for the other commands also turns it off"}},
		{[]string{"logs", "--help"}, []string{"no daemon needs to be running"}},
		{[]string{"help", "deploy"}, []string{"--dry-run", "--group is given"}},
	} {
		out, errOut, code := fnctl(t, c.args...)
		for _, w := range c.want {
			if code != ExitOK || errOut != "" || !strings.Contains(out, w) {
				t.Errorf("fnctl %v: exit %d, stderr %q; the help lacks %q", c.args, code, errOut, w)
			}
		}
	}
}

// The README carries the exit-code table as fnctl --help does, and none of
// its commands leaves a reader waiting on a tail that follows for ever.
func TestREADMEAgreesWithFnctl(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	if !strings.Contains(readme, "```\n"+exitCodesHelp+"\n```") {
		t.Error("the README lacks the exit-code table of fnctl --help")
	}
	for _, want := range []string{"| `FN_BROKERS` |", "| `FN_SERVER` |", "| `FN_STATE` |", "`fnctl completion bash", "**It follows the topic**"} {
		if !strings.Contains(readme, want) {
			t.Errorf("the README lacks %q", want)
		}
	}
	tails := regexp.MustCompile(`(?m)^\$? ?\./fnctl tail .*$`).FindAllString(readme, -1)
	if len(tails) == 0 {
		t.Fatal("no fnctl tail in the README's examples")
	}
	for _, cmd := range tails {
		if !regexp.MustCompile(` (-n \d+|--idle \S+)`).MatchString(cmd) {
			t.Errorf("README: %q follows the topic for ever: give it -n or --idle", cmd)
		}
	}
}
