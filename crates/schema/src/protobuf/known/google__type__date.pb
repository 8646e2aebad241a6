
google/type/date.protogoogle.type"0
Date
year (
month (
day (BZ
com.google.typeB	DateProtoPZ4google.golang.org/genproto/googleapis/type/date;date¢GTPbproto3