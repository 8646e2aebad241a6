
google/type/timeofday.protogoogle.type"K
	TimeOfDay
hours (
minutes (
seconds (
nanos (Bi
com.google.typeBTimeOfDayProtoPZ>google.golang.org/genproto/googleapis/type/timeofday;timeofday¢GTPbproto3