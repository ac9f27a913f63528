package main

import (
	"os"

	"github.com/gitops-resource/gitops-resource/pkg/app"
)

func main() { os.Exit(app.Main(app.Check)) }
