package main

import (
	"os"

	"github.com/gitops-resource/gitops-resource/pkg/app/clusterapp"
)

func main() { os.Exit(clusterapp.Main()) }
