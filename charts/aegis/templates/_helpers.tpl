{{- define "aegis.labels" -}}
app.kubernetes.io/part-of: aegis
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "aegis.operator.name" -}}
{{ .Release.Name }}-operator
{{- end -}}

{{- define "aegis.agent.name" -}}
{{ .Release.Name }}-agent
{{- end -}}
