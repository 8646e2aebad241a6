
 google/type/localized_text.protogoogle.type"4
LocalizedText
text (	
language_code (	Bw
com.google.typeBLocalizedTextProtoPZHgoogle.golang.org/genproto/googleapis/type/localized_text;localized_text¢GTPbproto3