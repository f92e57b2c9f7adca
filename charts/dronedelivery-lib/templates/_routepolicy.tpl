{{/*
Application Gateway for Containers RoutePolicy: the route's request timeout (`route.timeout`).
AGC ends a request that lasts longer than its route timeout, which would cut long-lived responses
such as Server-Sent Events; "0s" turns the timeout off for the route (the delivery service's
tracking streams). Rendered only when `route.timeout` is set.
*/}}
{{- define "dronedelivery-lib.routepolicy" -}}
{{- $r := .Values.route | default dict -}}
{{- if and $r.enabled $r.timeout -}}
{{- $name := include "dronedelivery-lib.name" . -}}
apiVersion: alb.networking.azure.io/v1
kind: RoutePolicy
metadata:
  name: {{ $name }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "dronedelivery-lib.labels" . | nindent 4 }}
spec:
  targetRef:
    group: gateway.networking.k8s.io
    kind: HTTPRoute
    name: {{ $name }}
    namespace: {{ .Release.Namespace }}
  default:
    timeouts:
      routeTimeout: {{ $r.timeout }}
{{- end -}}
{{- end -}}
