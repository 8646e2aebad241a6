
google/type/fraction.protogoogle.type"2
Fraction
	numerator (
denominator (Bf
com.google.typeBFractionProtoPZ<google.golang.org/genproto/googleapis/type/fraction;fraction¢GTPbproto3