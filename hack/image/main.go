package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"

	"github.com/gitops-resource/gitops-resource/internal/image"
)

func main() {
	o := image.Options{Root: ".", Log: os.Stderr, Username: os.Getenv("REGISTRY_USERNAME"), Password: os.Getenv("REGISTRY_PASSWORD")}
	platforms := flag.String("platform", strings.Join(image.Platforms, ","), "platforms to build, comma-separated")
	flag.StringVar(&o.Dir, "o", "", "write the index as an OCI layout in this directory")
	flag.Func("push", "push the index to this reference (repeatable)", func(s string) error { o.Push = append(o.Push, s); return nil })
	flag.StringVar(&o.Version, "version", "", "the version label (default: git describe --tags --always --dirty)")
	flag.StringVar(&o.Revision, "revision", "", "the revision label (default: git rev-parse HEAD)")
	flag.StringVar(&o.Layer, "layer", "", "write the layer of the one -platform as a tar to this file, and no index")
	flag.Parse()
	o.Platforms = strings.Split(*platforms, ",")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if _, err := image.Make(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}
