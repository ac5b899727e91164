// Command kube is a multi-call binary holding kube-apiserver, kube-controller-manager and
// kube-scheduler from k8s.io/kubernetes, linked once instead of three times.
//
// It dispatches on the basename of argv[0] (a symlink named kube-apiserver, ...) or, failing
// that, on its first argument: `kube kube-apiserver --etcd-servers=...`.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	_ "time/tzdata" // for CronJob time zone support

	"github.com/spf13/cobra"
	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"

	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
)

var commands = map[string]func() *cobra.Command{
	"kube-apiserver":          apiserver.NewAPIServerCommand,
	"kube-controller-manager": controllermanager.NewControllerManagerCommand,
	"kube-scheduler":          func() *cobra.Command { return scheduler.NewSchedulerCommand() },
}

func main() {
	name := strings.TrimSuffix(filepath.Base(os.Args[0]), ".exe")
	newCommand, ok := commands[name]
	if !ok && len(os.Args) > 1 {
		if newCommand, ok = commands[os.Args[1]]; ok {
			os.Args = append([]string{os.Args[1]}, os.Args[2:]...)
		}
	}
	if !ok {
		fmt.Fprintf(os.Stderr, "usage: %s {kube-apiserver|kube-controller-manager|kube-scheduler} [flags]\n", name)
		os.Exit(2)
	}
	os.Exit(cli.Run(newCommand()))
}
