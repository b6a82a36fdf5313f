package cli

import (
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
		{[]string{"--help"}, []string{exitCodesHelp, "FN_BROKERS", "FN_SERVER", "FN_TOKEN", "FN_STATE", "Set, it makes 'fnctl up' run no embedded broker", "fnctl completion --help"}},
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
