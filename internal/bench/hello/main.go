// Command hello is the baseline of microfn's start-cost figures: a Go
// program that does nothing, spawned by the same harness as a function.
package main

import "os"

func main() { os.Stdout.WriteString("hello\n") }
