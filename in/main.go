// Command in is the Concourse in script of every kind. In the image one
// binary answers to check, in and out (hard links): see pkg/app.
package main

import (
	"os"

	"github.com/gitops-resource/gitops-resource/pkg/app"
)

func main() { os.Exit(app.Main(app.In)) }
