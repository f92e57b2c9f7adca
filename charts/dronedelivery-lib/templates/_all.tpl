{{/*
Everything a service renders, in apply order. A service chart's only template is
`{{ include "dronedelivery-lib.all" . }}` (the workflow adds "dronedelivery-lib.keda").
*/}}
{{- define "dronedelivery-lib.all" -}}
{{- include "dronedelivery-lib.validate" . -}}
{{- $docs := list
  (include "dronedelivery-lib.serviceaccount" .)
  (include "dronedelivery-lib.secretproviderclass" .)
  (include "dronedelivery-lib.service" .)
  (include "dronedelivery-lib.deployment" .)
  (include "dronedelivery-lib.hpa" .)
  (include "dronedelivery-lib.pdb" .)
  (include "dronedelivery-lib.networkpolicy" .)
  (include "dronedelivery-lib.httproute" .)
  (include "dronedelivery-lib.routepolicy" .)
-}}
{{- range $docs }}
{{- if trim . }}
---
{{ . }}
{{- end }}
{{- end }}
{{- end -}}

{{/* NOTES.txt of every service chart: what was installed and what still needs the operator. */}}
{{- define "dronedelivery-lib.notes" -}}
{{- $name := include "dronedelivery-lib.name" . -}}
{{ $name }} {{ include "dronedelivery-lib.imageTag" . }} is installed in namespace {{ .Release.Namespace }}.

  kubectl -n {{ .Release.Namespace }} rollout status deployment/{{ $name }}
{{- if .Values.service.enabled }}
  kubectl -n {{ .Release.Namespace }} port-forward service/{{ $name }} 8080:{{ .Values.service.port }}   # then GET /readyz
{{- end }}
{{- if and .Values.workloadIdentity.enabled (eq .Values.workloadIdentity.clientId "00000000-0000-0000-0000-000000000000") }}

WARNING: workloadIdentity.clientId is the all-zero placeholder. Set the client id of the service's
managed identity (`--set workloadIdentity.clientId=$(az identity show -g <rg> -n <identity> --query clientId -o tsv)`):
without it every Azure call (and the Key Vault mount) fails and the pods never become ready.
{{- end }}
{{- range $name, $value := .Values.env }}
{{- if contains "placeholder" (toString $value) }}

WARNING: env.{{ $name }} is a placeholder ({{ $value }}): layer values-dev.yaml or values-prod.yaml.
{{- end }}
{{- end }}
{{- end -}}
