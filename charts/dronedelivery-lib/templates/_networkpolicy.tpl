{{/*
The service's NetworkPolicy. The namespace's default-deny policy (infra/k8s) blocks everything;
this policy opens only what the service needs:

ingress  - from the gateway (`networkPolicy.ingress.fromGateway`): pods of the gateway namespaces
           and/or the gateway's subnet CIDRs (Application Gateway for Containers sends from its
           delegated subnet, not from pods, so in AKS the CIDR is what matters);
         - from the named services' pods (`networkPolicy.ingress.fromServices`, e.g. workflow);
         - on the container's `http` port only. Nothing else (the workflow: nothing at all).
egress   - DNS: kube-dns pods in kube-system, UDP and TCP 53;
         - the named services' pods on 8080 (`networkPolicy.egress.toServices`; policies see the
           pod port, not the Service port 80);
         - Azure services (`networkPolicy.egress.azure`): the given CIDRs (private-endpoint subnets
           when the platform uses them), each without the `except` ranges inside it (an except
           range outside every CIDR fails the render: the API server would refuse it), on the given
           ports only: 443 (Entra ID, Key Vault,
           Application Insights, Service Bus over WebSockets), 5671 (Service Bus AMQP), 6380/10000
           (Azure Cache for Redis / Azure Managed Redis), 10255 (Cosmos DB for MongoDB).
*/}}
{{- define "dronedelivery-lib.networkpolicy" -}}
{{- $np := .Values.networkPolicy -}}
{{- if $np.enabled -}}
{{- $name := include "dronedelivery-lib.name" . -}}
{{- $gw := $np.gateway -}}
{{- if and $np.ingress.fromGateway (not (or $gw.namespaces $gw.cidrs)) -}}
{{- fail "networkPolicy.ingress.fromGateway needs networkPolicy.gateway.namespaces or .cidrs (an empty peer list would admit everyone)" -}}
{{- end -}}
{{- if and $np.egress.azure.ports (not $np.egress.azure.cidrs) -}}
{{- fail "networkPolicy.egress.azure.ports needs networkPolicy.egress.azure.cidrs" -}}
{{- end -}}
{{- range $excluded := $np.egress.azure.except -}}
{{- $inside := false -}}
{{- range $np.egress.azure.cidrs -}}
{{- if include "dronedelivery-lib.cidrWithin" (list $excluded .) -}}
{{- $inside = true -}}
{{- end -}}
{{- end -}}
{{- if not $inside -}}
{{- fail (printf "networkPolicy.egress.azure.except: %s is not strictly inside any of networkPolicy.egress.azure.cidrs (the API server refuses an except outside its CIDR)" $excluded) -}}
{{- end -}}
{{- end -}}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ $name }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "dronedelivery-lib.labels" . | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "dronedelivery-lib.selectorLabels" . | nindent 6 }}
  policyTypes: [Ingress, Egress]
  {{- if or $np.ingress.fromGateway $np.ingress.fromServices }}
  ingress:
    {{- if $np.ingress.fromGateway }}
    - from:
        {{- range $gw.namespaces }}
        - namespaceSelector:
            matchLabels:
              kubernetes.io/metadata.name: {{ . }}
          {{- with $gw.podLabels }}
          podSelector:
            matchLabels:
              {{- toYaml . | nindent 14 }}
          {{- end }}
        {{- end }}
        {{- range $gw.cidrs }}
        - ipBlock:
            cidr: {{ . }}
        {{- end }}
      ports:
        - port: http
          protocol: TCP
    {{- end }}
    {{- if $np.ingress.fromServices }}
    - from:
        {{- range $np.ingress.fromServices }}
        - podSelector:
            matchLabels:
              {{- include "dronedelivery-lib.peerLabels" . | nindent 14 }}
        {{- end }}
      ports:
        - port: http
          protocol: TCP
    {{- end }}
  {{- else }}
  ingress: []
  {{- end }}
  egress:
    - to:
        - namespaceSelector:
            matchLabels:
              kubernetes.io/metadata.name: {{ $np.dns.namespace }}
          podSelector:
            matchLabels:
              {{- toYaml $np.dns.podLabels | nindent 14 }}
      ports:
        - port: 53
          protocol: UDP
        - port: 53
          protocol: TCP
    {{- if $np.egress.toServices }}
    - to:
        {{- range $np.egress.toServices }}
        - podSelector:
            matchLabels:
              {{- include "dronedelivery-lib.peerLabels" . | nindent 14 }}
        {{- end }}
      ports:
        - port: 8080
          protocol: TCP
    {{- end }}
    {{- if $np.egress.azure.ports }}
    - to:
        {{- range $cidr := $np.egress.azure.cidrs }}
        - ipBlock:
            cidr: {{ $cidr }}
            {{- $except := list }}
            {{- range $np.egress.azure.except }}
            {{- if include "dronedelivery-lib.cidrWithin" (list . $cidr) }}
            {{- $except = append $except . }}
            {{- end }}
            {{- end }}
            {{- with $except }}
            except:
              {{- toYaml . | nindent 14 }}
            {{- end }}
        {{- end }}
      ports:
        {{- range $np.egress.azure.ports }}
        - port: {{ . }}
          protocol: TCP
        {{- end }}
    {{- end }}
{{- end -}}
{{- end -}}

{{/*
"true" when the IPv4 CIDR `index . 0` lies strictly inside the CIDR `index . 1` (a longer prefix
and the same leading bits), the rule the API server applies to an ipBlock's `except`.
*/}}
{{- define "dronedelivery-lib.cidrWithin" -}}
{{- $inner := include "dronedelivery-lib.cidrParse" (index . 0) | fromJson -}}
{{- $outer := include "dronedelivery-lib.cidrParse" (index . 1) | fromJson -}}
{{- $block := 1 -}}
{{- range until (sub 32 (int $outer.prefix) | int) -}}
{{- $block = mul $block 2 -}}
{{- end -}}
{{- if and (gt (int $inner.prefix) (int $outer.prefix)) (eq (div (int64 $inner.address) $block) (div (int64 $outer.address) $block)) -}}
true
{{- end -}}
{{- end -}}

{{/* An IPv4 CIDR as JSON: {"address": <the address as a 32-bit number>, "prefix": <length>}. */}}
{{- define "dronedelivery-lib.cidrParse" -}}
{{- $parts := splitList "/" . -}}
{{- $address := 0 -}}
{{- range splitList "." (first $parts) -}}
{{- $address = add (mul $address 256) (atoi .) -}}
{{- end -}}
{{- dict "address" $address "prefix" (atoi (last $parts)) | toJson -}}
{{- end -}}
