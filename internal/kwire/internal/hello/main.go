// Command hello is the baseline of the start-cost benchmark: a Go
// hello-world.
package main

import "fmt"

func main() { fmt.Println("hello") }
