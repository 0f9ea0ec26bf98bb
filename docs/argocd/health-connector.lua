-- Argo CD health check for coco.rs/v1alpha1 Connector (cluster-scoped).
-- Install as resource.customizations.health.coco.rs_Connector in argocd-cm (see docs/argocd-health.md).
-- Only the Lua base and table libraries are used: Argo CD runs custom health checks without the string library.
local hs = {}

local function condition(status, kind)
  if status == nil or status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local generation = nil
if obj.metadata ~= nil then
  generation = obj.metadata.generation
end
local status = obj.status
local ready = condition(status, "Ready")

if ready == nil or (generation ~= nil and status.observedGeneration ~= nil and status.observedGeneration < generation) then
  hs.status = "Progressing"
  if generation ~= nil then
    hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  else
    hs.message = "Waiting for the operator to observe this Connector"
  end
  return hs
end

local message = ready.message or ""
if ready.reason ~= nil and ready.status ~= "True" then
  message = ready.reason .. ": " .. message
end
if status.datasources ~= nil then
  message = message .. "; Datasources using it: " .. tostring(status.datasources)
end
hs.message = message

if ready.status == "True" then
  hs.status = "Healthy"
elseif ready.reason == "Disabled" then
  hs.status = "Suspended"
else
  hs.status = "Degraded"
end
return hs
