package main

import (
	"github.com/spf13/cobra"

	"github.com/metropolis-dev/metro/internal/deploy"
	"github.com/metropolis-dev/metro/internal/iostreams"
)

func init() { commands = append(commands, newDeployCmd) }

func newDeployCmd(io *iostreams.IOStreams) *cobra.Command {
	o := deploy.RunOptions{Dir: ".", Stdout: io.Out, Stderr: io.ErrOut}
	cmd := &cobra.Command{
		Use:   "deploy",
		Short: "Deploy to Kubernetes: NATS, the gateway and the workers",
		Long: `Render Kubernetes manifests from metro.yaml: a NATS cluster (unless nats.url
names one), the gateway with its Service, autoscaler, disruption budget and
optional Ingress, and one Deployment per worker.

Without --emit-yaml they are applied with kubectl apply --server-side.
With --emit-yaml they are written to stdout, to a file, or (-o DIR) one
file per object plus a kustomization.yaml.`,
		Example: `  metro deploy --emit-yaml > k8s.yaml
  metro deploy --emit-yaml -o k8s/ --tag v1.4.2
  metro deploy --namespace staging --tag "$(git rev-parse --short HEAD)"`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Output != "" && !o.EmitYAML {
				return usageErrorf("-o/--output needs --emit-yaml (without it, manifests go to kubectl)")
			}
			return deploy.Run(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.EmitYAML, "emit-yaml", false, "write the manifests instead of applying them")
	f.StringVarP(&o.Output, "output", "o", "", "with --emit-yaml: a file, a directory (existing or ending in /), or - for stdout")
	f.StringVar(&o.Namespace, "namespace", "", "namespace for every object (default deploy.namespace)")
	f.StringVar(&o.Tag, "tag", "", "image tag (default deploy.tag, latest)")
	f.StringVar(&o.Config, "config", "", "metro.yaml to read (default: search upward from the working directory)")
	f.BoolVar(&o.UserSecrets, "user-secrets", false, "reference NATS credential Secrets you manage (NAME-nats-gateway, NAME-nats-worker-W, ...) instead of emitting them")
	return cmd
}
