{{/*
Gateway API HTTPRoute for Application Gateway for Containers: attaches to the Gateway named in
`route.parentRefs` (in its own namespace; its listener must allow routes from this namespace) and
sends each `route.pathPrefixes` entry (only for `route.methods` when listed, e.g. GET for the
delivery service's public reads) to this service's Service. AGC probes the backends with the
pods' readiness probe (`/readyz`) when no HealthCheckPolicy exists.
*/}}
{{- define "dronedelivery-lib.httproute" -}}
{{- $r := .Values.route | default dict -}}
{{- if $r.enabled -}}
{{- $name := include "dronedelivery-lib.name" . -}}
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: {{ $name }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "dronedelivery-lib.labels" . | nindent 4 }}
spec:
  parentRefs:
    {{- range $r.parentRefs }}
    - group: gateway.networking.k8s.io
      kind: Gateway
      name: {{ .name }}
      {{- with .namespace }}
      namespace: {{ . }}
      {{- end }}
      {{- with .sectionName }}
      sectionName: {{ . }}
      {{- end }}
    {{- end }}
  {{- with $r.hostnames }}
  hostnames:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  rules:
    - matches:
        {{- range $prefix := $r.pathPrefixes }}
        {{- range $method := ($r.methods | default (list "")) }}
        - path:
            type: PathPrefix
            value: {{ $prefix }}
          {{- with $method }}
          method: {{ . }}
          {{- end }}
        {{- end }}
        {{- end }}
      backendRefs:
        - group: ""
          kind: Service
          name: {{ $name }}
          port: {{ $.Values.service.port }}
          weight: 1
{{- end -}}
{{- end -}}
