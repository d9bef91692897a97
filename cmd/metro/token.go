package main

import (
	"github.com/spf13/cobra"

	"github.com/metropolis-dev/metro/internal/devtoken"
	"github.com/metropolis-dev/metro/internal/iostreams"
)

func init() { commands = append(commands, newTokenCmd) }

type tokenOptions struct {
	configPath string
	opts       devtoken.Options
}

func newTokenCmd(io *iostreams.IOStreams) *cobra.Command {
	o := &tokenOptions{opts: devtoken.Options{Out: io.Out, ErrOut: io.ErrOut}}
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Mint a bearer token the gateway of this project accepts (development)",
		Long: `Print a JWT for gateway.auth.jwt of metro.yaml: its issuer and audience,
signed with the private key in dev-key.json beside metro.yaml (--key), whose
public half is in the JWKS file that gateway.auth.jwt.jwks names.
--new-key writes both files first.

    curl -H "Authorization: Bearer $(metro token --sub alice)" -X POST localhost:8080/orders -d ...

For development only: production tokens come from your identity provider.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(o.configPath)
			if err != nil {
				return err
			}
			o.opts.Config = cfg
			return devtoken.Run(o.opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.configPath, "config", "", "metro.yaml to read (default: search upward from the working directory)")
	f.StringVar(&o.opts.Key, "key", "", "private JWK to sign with (default dev-key.json beside metro.yaml)")
	f.BoolVar(&o.opts.NewKey, "new-key", false, "write a new key and the JWKS file first (neither may exist)")
	f.StringVar(&o.opts.Sub, "sub", "dev", "the token's subject (sub)")
	f.DurationVar(&o.opts.TTL, "ttl", 0, "how long the token is valid (default 1h)")
	f.StringToStringVar(&o.opts.Claims, "claim", nil, "another claim, NAME=VALUE (repeatable)")
	return cmd
}
