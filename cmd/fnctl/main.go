// Command fnctl runs, feeds and inspects microfn functions.
package main

import (
	"os"

	"github.com/microfn/microfn/internal/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }
