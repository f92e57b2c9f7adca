{{/*
Gateway API HTTPRoute for Application Gateway for Containers: attaches to the Gateway named in
`route.parentRefs` (in its own namespace; its listener must allow routes from this namespace) and
sends exactly the `route.matches` (a path, Exact or PathPrefix, and a method each: the public API,
nothing more) to this service's Service. With `route.edgeHeader`, every request routed carries
`Dronedelivery-Edge: public` (set by the gateway, replacing any a client sent), to which the
service's internal routes answer 404: a path under a routed prefix that is not public (the
delivery service's `/{id}/owner`) still does not exist from outside. Exact and PathPrefix are the
match types every Gateway API implementation supports (regular expressions are implementation-
specific). AGC probes the backends with the pods' readiness probe (`/readyz`) when no
HealthCheckPolicy exists.
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
        {{- range $r.matches }}
        - path:
            type: {{ .path.type }}
            value: {{ .path.value }}
          method: {{ .method }}
        {{- end }}
      {{- if $r.edgeHeader }}
      filters:
        - type: RequestHeaderModifier
          requestHeaderModifier:
            set:
              - name: Dronedelivery-Edge
                value: public
      {{- end }}
      backendRefs:
        - group: ""
          kind: Service
          name: {{ $name }}
          port: {{ $.Values.service.port }}
          weight: 1
{{- end -}}
{{- end -}}
